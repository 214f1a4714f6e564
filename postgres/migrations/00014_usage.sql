-- +goose Up
-- Traffic (issue 19). The host that owns a WireGuard device reads every
-- peer's counters on USAGE_INTERVAL and adds what grew to the peer's row
-- for the calendar month (UTC): one row per peer and month, never one per
-- sample.

-- The device's raw counters as last seen, to turn the next reading into a
-- delta. prev_* are the values before the last update, which the update
-- returns: the delta is computed under the row's lock, so two collectors
-- never count the same bytes twice.
CREATE TABLE peer_counters (
    peer_id        bigint PRIMARY KEY REFERENCES peers (id) ON DELETE CASCADE,
    rx             bigint NOT NULL, -- bytes the server received from the device
    tx             bigint NOT NULL, -- bytes the server sent to it
    prev_rx        bigint NOT NULL DEFAULT 0,
    prev_tx        bigint NOT NULL DEFAULT 0,
    last_handshake timestamptz,     -- NULL: never connected
    sampled_at     timestamptz NOT NULL -- the collector's clock at the device read
) WITH (fillfactor = 90); -- room on the page for HOT updates: no index column changes

CREATE TABLE peer_usage (
    peer_id        bigint NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    month          date NOT NULL, -- the first day of the month, UTC
    rx             bigint NOT NULL DEFAULT 0,
    tx             bigint NOT NULL DEFAULT 0,
    last_handshake timestamptz,
    PRIMARY KEY (peer_id, month)
) WITH (fillfactor = 90);
-- /stats sums a month's rows by user. Nothing indexes the counters, so a
-- collection's updates stay HOT.
CREATE INDEX peer_usage_month ON peer_usage (month);

-- One row per server: when its device was last collected (the connection
-- check trusts "no handshake" only after a collection) and its byte totals
-- for /metrics.
CREATE TABLE usage_collections (
    server_id    bigint PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    collected_at timestamptz NOT NULL,
    rx           bigint NOT NULL DEFAULT 0,
    tx           bigint NOT NULL DEFAULT 0
);

-- The connection check: a delivered device is checked once, 15 minutes
-- after delivery. Devices delivered before this migration are not.
ALTER TABLE peers ADD COLUMN connection_checked_at timestamptz;
UPDATE peers SET connection_checked_at = now() WHERE delivered_at IS NOT NULL;
CREATE INDEX peers_connection_due ON peers (delivered_at)
    WHERE connection_checked_at IS NULL AND delivered_at IS NOT NULL;

-- +goose Down
DROP INDEX peers_connection_due;
ALTER TABLE peers DROP COLUMN connection_checked_at;
DROP TABLE usage_collections;
DROP TABLE peer_usage;
DROP TABLE peer_counters;
