-- +goose Up
-- The per-server change log the reconciler reads on the hot path (issue 15):
-- which peers changed in which revision, so a reconcile reads only those
-- rows instead of every active peer. Written by triggers, so no write path
-- can forget it.
CREATE TABLE peer_changes (
    server_id bigint NOT NULL,
    revision  bigint NOT NULL,
    peer_id   bigint NOT NULL
);
CREATE INDEX peer_changes_server_revision ON peer_changes (server_id, revision);

-- Changes at or below revision were pruned: a reconciler that applied an
-- older revision cannot catch up from the log and reconciles in full.
CREATE TABLE peer_changes_pruned (
    server_id bigint PRIMARY KEY,
    revision  bigint NOT NULL
);

-- The trigger is deferred to commit, after the transaction's own
-- `UPDATE servers SET revision = revision + 1` (which may share one
-- statement with the peer insert, in the allocator). That update's row
-- lock is held until commit, so the revision read here is the one this
-- transaction commits, and every later revision commits after it: a
-- reconciler reading "revision > applied" in one snapshot with the
-- server's revision misses nothing. A transaction that changed a peer
-- without bumping the revision gets its bump here.
-- +goose StatementBegin
CREATE FUNCTION log_peer_change(sid bigint, pid bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rev bigint;
BEGIN
    SELECT revision INTO rev FROM servers WHERE id = sid AND xmin = pg_current_xact_id()::xid;
    IF NOT FOUND THEN
        UPDATE servers SET revision = revision + 1 WHERE id = sid RETURNING revision INTO rev;
        PERFORM pg_notify('wgbot_peers', sid::text || ':' || rev::text);
    END IF;
    INSERT INTO peer_changes (server_id, revision, peer_id) VALUES (sid, rev, pid);
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION peers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM log_peer_change(OLD.server_id, OLD.id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.server_id <> OLD.server_id) THEN
        PERFORM log_peer_change(NEW.server_id, NEW.id);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER peers_changed_insert_delete AFTER INSERT OR DELETE ON peers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION peers_changed();
-- Only what the device or wg0.conf shows; delivery marks and re-sealing
-- under the same key material change nothing there.
CREATE CONSTRAINT TRIGGER peers_changed_update AFTER UPDATE ON peers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.ip IS DISTINCT FROM NEW.ip OR OLD.ip6 IS DISTINCT FROM NEW.ip6
        OR OLD.public_key IS DISTINCT FROM NEW.public_key OR OLD.server_id IS DISTINCT FROM NEW.server_id
        OR OLD.preshared_key_enc IS DISTINCT FROM NEW.preshared_key_enc)
    EXECUTE FUNCTION peers_changed();

-- +goose Down
DROP TABLE peer_changes_pruned;
DROP TABLE peer_changes;
DROP TRIGGER peers_changed_update ON peers;
DROP TRIGGER peers_changed_insert_delete ON peers;
DROP FUNCTION peers_changed();
DROP FUNCTION log_peer_change(bigint, bigint);
