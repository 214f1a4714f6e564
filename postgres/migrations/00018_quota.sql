-- +goose Up
-- Traffic quotas (issue 19 §3). A plan may carry a monthly quota; the
-- subscription keeps the bytes it was sold with, so a later plans-file
-- edit never changes a paid period. 0: unlimited.
ALTER TABLE subscriptions ADD COLUMN traffic_quota bigint NOT NULL DEFAULT 0 CHECK (traffic_quota >= 0);
CREATE INDEX subscriptions_quota ON subscriptions (id) WHERE status = 'active' AND traffic_quota > 0;

-- An order copies what it sells, like days and devices: a plan's monthly
-- quota, or for a top-up (no days, no devices) the bytes it adds.
ALTER TABLE orders ADD COLUMN traffic bigint NOT NULL DEFAULT 0 CHECK (traffic >= 0),
    ADD COLUMN topup boolean NOT NULL DEFAULT false;
ALTER TABLE orders DROP CONSTRAINT orders_days_check, DROP CONSTRAINT orders_devices_check,
    ADD CONSTRAINT orders_days_check CHECK (days > 0 OR topup),
    ADD CONSTRAINT orders_devices_check CHECK (devices > 0 OR topup),
    ADD CONSTRAINT orders_topup_traffic CHECK (NOT topup OR traffic > 0);

-- A top-up adds bytes to one subscription's allowance for one calendar
-- month (UTC). Its key is the payment that bought it, so the payment's own
-- exactly-once key (payments' UNIQUE (provider, provider_payment_id))
-- covers it; a refund deletes it.
CREATE TABLE traffic_topups (
    payment_id      bigint PRIMARY KEY REFERENCES payments (id),
    subscription_id bigint NOT NULL REFERENCES subscriptions (id),
    month           date NOT NULL,
    bytes           bigint NOT NULL CHECK (bytes > 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX traffic_topups_subscription ON traffic_topups (subscription_id, month);

-- The 80% and 100% notices, once per subscription, month and allowance
-- (a top-up makes a new allowance, whose crossings are told again).
CREATE TABLE quota_notices (
    subscription_id bigint NOT NULL REFERENCES subscriptions (id),
    month           date NOT NULL,
    allowance       bigint NOT NULL,
    level           integer NOT NULL CHECK (level IN (80, 100)),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, month, allowance, level)
);

-- Why a disabled peer is off: NULL for an expired subscription's (or an
-- import's), 'quota' for one whose subscription used up its month. Only
-- the quota check turns 'quota' peers back on, and they are never purged
-- while their subscription is live. The reason means something only while
-- the status is disabled: a revoke leaves it, and every reader checks both.
ALTER TABLE peers ADD COLUMN disabled_reason text CHECK (disabled_reason IN ('quota'));
CREATE INDEX peers_quota_disabled ON peers (subscription_id) WHERE status = 'disabled' AND disabled_reason = 'quota';

-- +goose Down
DROP INDEX peers_quota_disabled;
ALTER TABLE peers DROP COLUMN disabled_reason;
DROP TABLE quota_notices;
DROP TABLE traffic_topups;
ALTER TABLE orders DROP CONSTRAINT orders_topup_traffic, DROP CONSTRAINT orders_days_check, DROP CONSTRAINT orders_devices_check,
    ADD CONSTRAINT orders_days_check CHECK (days > 0), ADD CONSTRAINT orders_devices_check CHECK (devices > 0);
ALTER TABLE orders DROP COLUMN topup, DROP COLUMN traffic;
DROP INDEX subscriptions_quota;
ALTER TABLE subscriptions DROP COLUMN traffic_quota;
