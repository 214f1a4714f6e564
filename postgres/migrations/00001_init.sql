-- +goose Up
-- Users of the bot, one row per Telegram account.
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    telegram_id bigint NOT NULL UNIQUE,
    username    text NOT NULL DEFAULT '',
    first_name  text NOT NULL DEFAULT '',
    language    text NOT NULL DEFAULT 'en',
    referrer_id bigint REFERENCES users (id),
    blocked_bot boolean NOT NULL DEFAULT false,
    banned      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_username ON users (lower(username)) WHERE username <> '';

-- A WireGuard server (interface) that peers are issued on.
CREATE TABLE servers (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    interface  text NOT NULL,
    endpoint   text NOT NULL,
    subnet     cidr NOT NULL,
    subnet6    cidr,
    address    inet NOT NULL,          -- the server's own tunnel address
    public_key text NOT NULL,
    dns        text NOT NULL DEFAULT '',
    mtu        integer NOT NULL DEFAULT 0,
    -- Allocator high-water mark: every host below it is either in use or in
    -- free_addresses, so an allocation never scans the used addresses.
    next_ip    inet NOT NULL,
    -- Bumped by every transaction that changes the server's peers; the
    -- reconciler records which revision it applied, so a caller can wait
    -- for the reconcile that includes its own change.
    revision   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (address << subnet),
    CHECK (next_ip << subnet)
);

-- A user's access period. Renewal extends the live row instead of adding one.
CREATE TABLE subscriptions (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    plan         text NOT NULL,
    is_trial     boolean NOT NULL DEFAULT false, -- created by the free trial
    status       text NOT NULL CHECK (status IN ('active', 'expired', 'revoked')),
    device_limit integer NOT NULL CHECK (device_limit > 0),
    starts_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- I2: one trial per user, ever (trial rows are never deleted).
CREATE UNIQUE INDEX subscriptions_one_trial ON subscriptions (user_id) WHERE is_trial;
-- One live subscription per user: buying while live extends it.
CREATE UNIQUE INDEX subscriptions_one_active ON subscriptions (user_id) WHERE status = 'active';
CREATE INDEX subscriptions_expiry ON subscriptions (expires_at) WHERE status = 'active';

-- A device: one WireGuard peer with its tunnel address and keys.
CREATE TABLE peers (
    id              bigserial PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES subscriptions (id),
    server_id       bigint NOT NULL REFERENCES servers (id),
    name            text NOT NULL,
    ip              inet NOT NULL,
    ip6             inet,
    public_key      text NOT NULL UNIQUE,          -- I1: never two peers with one key
    private_key_enc bytea NOT NULL,                -- AES-256-GCM, see secretbox
    preshared_key_enc bytea NOT NULL,
    key_id          text NOT NULL,                 -- which master key sealed them
    status          text NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,
    revoked_at      timestamptz
);
-- I1: an address belongs to at most one peer that still holds it. Disabled
-- peers (expired, within the grace period) keep their address for renewal.
CREATE UNIQUE INDEX peers_server_ip ON peers (server_id, ip) WHERE status <> 'revoked';
CREATE INDEX peers_subscription ON peers (subscription_id);
CREATE INDEX peers_server_status ON peers (server_id, status);

-- Addresses freed by a revoke, reusable once available_at has passed.
CREATE TABLE free_addresses (
    server_id    bigint NOT NULL REFERENCES servers (id),
    ip           inet NOT NULL,
    available_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, ip)
);

-- Addresses the allocator must never hand out: those of hand-made peers in
-- wg0.conf, which the reconciler keeps in sync.
CREATE TABLE reserved_addresses (
    server_id bigint NOT NULL REFERENCES servers (id),
    ip        inet NOT NULL,
    PRIMARY KEY (server_id, ip)
);

-- Reminders already queued, one per subscription period and offset.
CREATE TABLE reminders (
    subscription_id bigint NOT NULL REFERENCES subscriptions (id),
    expires_at      timestamptz NOT NULL,
    days            integer NOT NULL,
    queued_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, expires_at, days)
);

-- What a user asked to buy, with the price we expect the provider to confirm.
CREATE TABLE orders (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    plan         text NOT NULL,
    days         integer NOT NULL CHECK (days > 0),       -- copied from the plan: a
    devices      integer NOT NULL CHECK (devices > 0),    -- later price list change
    provider     text NOT NULL,
    amount       bigint NOT NULL CHECK (amount > 0),      -- does not alter a sale; minor units
    currency     text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'paid', 'canceled', 'refunded')),
    provider_ref text NOT NULL DEFAULT '',            -- provider's id for the checkout
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    paid_at      timestamptz
);
CREATE INDEX orders_user ON orders (user_id);

-- I3: a provider's payment, credited at most once.
CREATE TABLE payments (
    id                  bigserial PRIMARY KEY,
    provider            text NOT NULL,
    provider_payment_id text NOT NULL,
    order_id            bigint REFERENCES orders (id),
    user_id             bigint REFERENCES users (id),
    amount              bigint NOT NULL,
    currency            text NOT NULL,
    status              text NOT NULL CHECK (status IN ('credited', 'refunded')),
    days                integer NOT NULL,
    peer_id             bigint REFERENCES peers (id), -- the device this payment issued, if any
    credited_until      timestamptz,                  -- end of the period it bought: a refund takes back only what is unused
    flagged             text NOT NULL DEFAULT '',     -- why an admin should look
    raw                 jsonb,
    applied_at          timestamptz NOT NULL DEFAULT now(),
    refunded_at         timestamptz,
    UNIQUE (provider, provider_payment_id)
);

-- +goose Down
DROP TABLE payments;
DROP TABLE orders;
DROP TABLE reminders;
DROP TABLE reserved_addresses;
DROP TABLE free_addresses;
DROP TABLE peers;
DROP TABLE subscriptions;
DROP TABLE servers;
DROP TABLE users;
