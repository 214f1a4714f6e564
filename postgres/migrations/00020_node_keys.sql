-- +goose Up
-- Secrets stay bounded per host (issue 16 §4): each `wgbot node` has its
-- own X25519 key pair; serve, which holds the master key, seals every
-- peer's preshared key to its server's node key as well, so a node runs
-- without the master key and a stolen node reveals only its own peers'
-- preshared keys.
ALTER TABLE servers
    -- The node's public key (base64); '' until the node first starts.
    ADD COLUMN node_key text NOT NULL DEFAULT ''
        CHECK (node_key = '' OR length(decode(node_key, 'base64')) = 32),
    -- `wgbot servers rekey NAME`: the node makes a new key pair and
    -- registers it once, then serve re-seals.
    ADD COLUMN node_rekey boolean NOT NULL DEFAULT false,
    -- The node key every peer of the server is sealed to; unlike node_key
    -- until serve has sealed (or re-sealed) them all.
    ADD COLUMN node_sealed_key text NOT NULL DEFAULT '';

ALTER TABLE peers
    ADD COLUMN psk_node_sealed bytea, -- the preshared key sealed to psk_node_key
    ADD COLUMN psk_node_key text;     -- the node public key it is sealed to; NULL: not sealed yet

-- A peer written with a preshared key not sealed to its server's current
-- node key (issued while the node's key changed, imported, moved) marks
-- the server as not fully sealed, so serve's sealing job takes it up. A
-- trigger, so no write path can forget it. The allocator holds the server
-- row's lock by then, so a key registered meanwhile waits for this commit.
-- +goose StatementBegin
CREATE FUNCTION peers_node_seal_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE servers SET node_sealed_key = ''
    WHERE id = NEW.server_id AND node_sealed_key <> '' AND node_key IS DISTINCT FROM NEW.psk_node_key;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER peers_node_seal_check AFTER INSERT OR UPDATE OF psk_node_key, server_id ON peers
    FOR EACH ROW EXECUTE FUNCTION peers_node_seal_check();

-- A node registers its public key through this function only (its role
-- may execute it, not update the columns): a key on a server that has
-- none, or a new one after the operator asked for a rotation. Any other
-- change is refused, so the shared node role cannot redirect another
-- server's preshared keys to a key of its own choosing.
-- +goose StatementBegin
CREATE FUNCTION register_node_key(sid bigint, key text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cur text;
    rekey boolean;
BEGIN
    SELECT node_key, node_rekey INTO cur, rekey FROM servers WHERE id = sid FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no server %', sid USING ERRCODE = 'no_data_found';
    END IF;
    IF cur = key THEN
        RETURN false;
    END IF;
    IF cur <> '' AND NOT rekey THEN
        RAISE EXCEPTION 'server % has another node key registered; run `wgbot servers rekey` to replace it', sid
            USING ERRCODE = 'WGK01'; -- our own code: the node tells it from a missing grant
    END IF;
    UPDATE servers SET node_key = key, node_rekey = false, updated_at = now() WHERE id = sid;
    RETURN true;
END $$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION register_node_key(bigint, text) FROM PUBLIC;

-- +goose Down
DROP FUNCTION register_node_key(bigint, text);
DROP TRIGGER peers_node_seal_check ON peers;
DROP FUNCTION peers_node_seal_check();
ALTER TABLE peers DROP COLUMN psk_node_key, DROP COLUMN psk_node_sealed;
ALTER TABLE servers DROP COLUMN node_sealed_key, DROP COLUMN node_rekey, DROP COLUMN node_key;
