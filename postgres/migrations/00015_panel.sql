-- +goose Up
-- The operator web panel (panel/). A login link is a random token shown
-- once; only its SHA-256 is stored, so a database dump opens no session.
CREATE TABLE panel_links (
    token_hash  bytea PRIMARY KEY,
    admin_id    bigint NOT NULL,               -- the admin's Telegram id
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX panel_links_expires ON panel_links (expires_at);

-- A signed-in browser. Stored here, not in memory, so every serve process
-- behind one proxy knows it; the cookie holds the id, the row its hash.
CREATE TABLE panel_sessions (
    id_hash      bytea PRIMARY KEY,
    admin_id     bigint NOT NULL,
    csrf         text NOT NULL,                -- the token every form posts back
    lang         text NOT NULL DEFAULT 'en',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX panel_sessions_last_seen ON panel_sessions (last_seen_at);

-- What admins did: who, what, to whom, when, and the state before and
-- after. Rows are only ever added.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL CHECK (source IN ('panel', 'bot', 'cli')),
    admin_id    bigint NOT NULL,            -- the admin's Telegram id (0: the CLI's operator)
    action      text NOT NULL,              -- sign_in, grant, refund, revoke, ban, unban, message
    target_id   bigint NOT NULL DEFAULT 0,  -- the user's Telegram id, if any
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_target ON audit_log (target_id, id) WHERE target_id <> 0;

-- One-time keys of forms whose repeat would act twice (a grant): a
-- double click or a resent POST finds its key used.
CREATE TABLE panel_forms (
    key     text PRIMARY KEY,
    used_at timestamptz NOT NULL DEFAULT now()
);

-- The panel's reads at 100,000 users: prefix search by name and username
-- (text_pattern_ops serves LIKE 'x%' in any collation), the day series of
-- the dashboard and a user's payments.
CREATE INDEX users_username_prefix ON users (lower(username) text_pattern_ops) WHERE username <> '';
CREATE INDEX users_first_name_prefix ON users (lower(first_name) text_pattern_ops);
CREATE INDEX users_created_at ON users (created_at);
CREATE INDEX users_banned ON users (id) WHERE banned;
CREATE INDEX subscriptions_user ON subscriptions (user_id, id);
CREATE INDEX subscriptions_trial_created ON subscriptions (created_at) WHERE is_trial;
CREATE INDEX payments_user ON payments (user_id, applied_at);
CREATE INDEX payments_applied_at ON payments (applied_at);
CREATE INDEX payments_refunded_at ON payments (refunded_at) WHERE refunded_at IS NOT NULL;
CREATE INDEX payments_flagged ON payments (id) WHERE flagged <> '';

-- +goose Down
DROP TABLE panel_forms;
DROP INDEX payments_flagged;
DROP INDEX payments_refunded_at;
DROP INDEX payments_applied_at;
DROP INDEX payments_user;
DROP INDEX subscriptions_trial_created;
DROP INDEX subscriptions_user;
DROP INDEX users_banned;
DROP INDEX users_created_at;
DROP INDEX users_first_name_prefix;
DROP INDEX users_username_prefix;
DROP TABLE audit_log;
DROP TABLE panel_sessions;
DROP TABLE panel_links;
