-- The least-privilege database role of a `wgbot node` (docs/operations.md,
-- "Several hosts"). Run it as the owner of wgbot's tables, after
-- `wgbot migrate`:
--   psql -v ON_ERROR_STOP=1 -d wgbot -f deploy/node-role.sql
--   psql -d wgbot -c "ALTER ROLE wgbot_node PASSWORD '…'"
-- A node reads its server's peers and change log, keeps the addresses of
-- hand-made peers reserved, prunes the change log, registers its device's
-- key, reports its heartbeat (recording its own outages when it comes
-- back) and collects its device's traffic; its /metrics read each
-- server's peer counts (server_load). It cannot read users, payments or any
-- other table, nor change a peer.
DO $$ BEGIN CREATE ROLE wgbot_node LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA public TO wgbot_node;
GRANT SELECT ON servers, peers, server_load TO wgbot_node;
GRANT UPDATE (public_key, updated_at) ON servers TO wgbot_node;
GRANT SELECT, DELETE ON peer_changes TO wgbot_node;
GRANT SELECT, INSERT, UPDATE ON peer_changes_pruned TO wgbot_node;
GRANT SELECT, INSERT, DELETE ON reserved_addresses, free_addresses TO wgbot_node;
GRANT SELECT, INSERT, UPDATE ON node_status TO wgbot_node;
GRANT SELECT, INSERT, UPDATE ON peer_counters, peer_usage, usage_collections TO wgbot_node;
GRANT INSERT, SELECT (server_id, started_at) ON server_outages TO wgbot_node; -- SELECT: its ON CONFLICT key
GRANT USAGE ON SEQUENCE server_outages_id_seq TO wgbot_node;
-- Its own key pair (issue 16 §4): the node registers its public key
-- through this function only, which refuses to replace a key unless the
-- operator asked for a rotation (`wgbot servers rekey`).
GRANT EXECUTE ON FUNCTION register_node_key(bigint, text) TO wgbot_node;
