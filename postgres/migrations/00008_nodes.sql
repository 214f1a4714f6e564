-- +goose Up
-- Locations (issue 16): a server is one WireGuard host, run by its own
-- `wgbot node` (or by `wgbot serve` in-process on a single host). Servers
-- carry a location the user picks, a capacity, and a state: a draining
-- server takes no new peers, its existing ones keep working.
ALTER TABLE servers
    ADD COLUMN location text NOT NULL DEFAULT '',
    ADD COLUMN capacity integer CHECK (capacity > 0), -- NULL: no limit
    ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining'));

-- Two servers must never hand out the same address: their subnets are
-- disjoint, which the database enforces (inet_ops is built in).
ALTER TABLE servers ADD CONSTRAINT servers_subnets_disjoint EXCLUDE USING gist (subnet inet_ops WITH &&);
ALTER TABLE servers ADD CONSTRAINT servers_subnets6_disjoint EXCLUDE USING gist (subnet6 inet_ops WITH &&);

-- What the node of each server last reported. Kept apart from servers so
-- that a heartbeat never waits for the allocator's lock on the server row.
CREATE TABLE node_status (
    server_id   bigint PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    revision    bigint NOT NULL DEFAULT 0, -- the last revision the node applied
    version     text NOT NULL DEFAULT '',
    peers       integer NOT NULL DEFAULT 0,
    handshakes  integer NOT NULL DEFAULT 0, -- peers with a handshake in the last 3 minutes
    listen_port integer NOT NULL DEFAULT 0,
    seen_at     timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE node_status;
ALTER TABLE servers DROP CONSTRAINT servers_subnets6_disjoint;
ALTER TABLE servers DROP CONSTRAINT servers_subnets_disjoint;
ALTER TABLE servers DROP COLUMN state, DROP COLUMN capacity, DROP COLUMN location;
