-- +goose Up
-- Outage credit (issue 19). A node's outage is the gap between the last
-- heartbeat of one `wgbot node` process and the first of the next one on
-- the same server: the node records it itself when it comes back, from
-- its node_status row (boot names the process that wrote it), so a serve
-- process that was down meanwhile, or a database that was unreachable
-- while the node kept running its device, never makes one up.
ALTER TABLE node_status ADD COLUMN boot text NOT NULL DEFAULT '';

-- Every restart gap, once: UNIQUE (server_id, started_at). A serve process
-- settles each ended one once (settled_at): one of at least
-- OUTAGE_CREDIT_AFTER gives every subscription that had an active device
-- there when it began the downtime back (credit, rounded up to whole
-- minutes), each as a ledger row keyed outage:<id>:<subscription id>.
CREATE TABLE server_outages (
    id            bigserial PRIMARY KEY,
    server_id     bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    started_at    timestamptz NOT NULL, -- the last heartbeat before the gap
    ended_at      timestamptz NOT NULL, -- the first one after it
    settled_at    timestamptz,
    credit        interval NOT NULL DEFAULT '0', -- given to each subscription; 0: too short, or credit off
    subscriptions integer NOT NULL DEFAULT 0,    -- how many were credited
    UNIQUE (server_id, started_at),
    CHECK (ended_at > started_at)
);
CREATE INDEX server_outages_unsettled ON server_outages (id) WHERE settled_at IS NULL;

ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check CHECK (kind IN ('payment', 'referral', 'promo', 'gift', 'outage'));

-- +goose Down
DELETE FROM payments WHERE kind = 'outage';
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check CHECK (kind IN ('payment', 'referral', 'promo', 'gift'));
DROP TABLE server_outages;
ALTER TABLE node_status DROP COLUMN boot;
