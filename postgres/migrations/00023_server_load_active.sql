-- +goose Up
-- server_load (00012) also counts each server's active peers, so that
-- `servers list`, the panel, the admin stats and /metrics read one row per
-- server instead of counting its peers. Held addresses alone would not
-- do: they include disabled peers (expired, within the renewal grace of
-- 30 days by default), which on a bot with many trials can outnumber the
-- active ones, and counting those would again grow with the peers.
ALTER TABLE server_load ADD COLUMN peers_active integer NOT NULL DEFAULT 0 CHECK (peers_active >= 0);

UPDATE server_load l SET peers_active = (SELECT count(*) FROM peers p WHERE p.server_id = l.server_id AND p.status = 'active');

-- The same trigger (fired on status and server_id changes, inserts and
-- deletes), now keeping both counts in the one row it already updates.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION count_held_peers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status <> 'revoked' THEN
        UPDATE server_load SET peers_held = peers_held - 1, peers_active = peers_active - (OLD.status = 'active')::int
        WHERE server_id = OLD.server_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status <> 'revoked' THEN
        INSERT INTO server_load AS l (server_id, peers_held, peers_active) VALUES (NEW.server_id, 1, (NEW.status = 'active')::int)
        ON CONFLICT (server_id) DO UPDATE SET peers_held = l.peers_held + 1, peers_active = l.peers_active + EXCLUDED.peers_active;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION count_held_peers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status <> 'revoked' THEN
        UPDATE server_load SET peers_held = peers_held - 1 WHERE server_id = OLD.server_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status <> 'revoked' THEN
        INSERT INTO server_load AS l (server_id, peers_held) VALUES (NEW.server_id, 1)
        ON CONFLICT (server_id) DO UPDATE SET peers_held = l.peers_held + 1;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
ALTER TABLE server_load DROP COLUMN peers_active;
