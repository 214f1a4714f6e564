-- +goose Up
-- How many addresses each server's peers hold (every peer not revoked),
-- kept by a trigger on peers so that every path that adds, revokes or
-- deletes a peer counts, whoever wrote it. Picking a server and checking
-- its capacity then read one row per server instead of counting its
-- peers.
--
-- The count has a table of its own: a write to the server row would look
-- to the change log's trigger (00006) like this transaction's revision
-- bump. And the trigger runs at commit, after the change log's trigger
-- (deferred triggers of one row fire in name order), so every transaction
-- locks the server row before its load row and two never wait on each
-- other in the opposite order. The allocator holds the server's advisory
-- lock until after commit, so the next allocation sees the new count.
CREATE TABLE server_load (
    server_id  bigint PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    peers_held integer NOT NULL DEFAULT 0 CHECK (peers_held >= 0)
);

INSERT INTO server_load (server_id, peers_held)
SELECT s.id, (SELECT count(*) FROM peers p WHERE p.server_id = s.id AND p.status <> 'revoked') FROM servers s;

-- +goose StatementBegin
CREATE FUNCTION count_held_peers() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE CONSTRAINT TRIGGER peers_count_held AFTER INSERT OR DELETE OR UPDATE OF status, server_id ON peers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION count_held_peers();

-- +goose Down
DROP TRIGGER peers_count_held ON peers;
DROP FUNCTION count_held_peers();
DROP TABLE server_load;
