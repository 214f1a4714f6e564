-- +goose Up
-- Referrals and promo codes (issue 18). Every credit that is not money (a
-- referral bonus, promo days) is a row of the payments ledger with a kind
-- and its own UNIQUE (provider, provider_payment_id), so it is given at
-- most once and applied in the transaction that records it (I10).

-- A user's personal referral code, made the first time it is shown: the
-- deep link carries it, never the Telegram id.
ALTER TABLE users ADD COLUMN referral_code text;
CREATE UNIQUE INDEX users_referral_code ON users (referral_code) WHERE referral_code IS NOT NULL;
CREATE INDEX users_referrer ON users (referrer_id) WHERE referrer_id IS NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_no_self_referral CHECK (referrer_id <> id);

-- kind: payment (money), referral (a bonus), promo (free days).
-- source_payment_id: the payment a referral bonus was earned by, so its
-- refund takes the bonus back. Bonus keys are referrer:<invited user id>
-- and invited:<invited user id>: once per invited user, ever.
ALTER TABLE payments ADD COLUMN kind text NOT NULL DEFAULT 'payment' CHECK (kind IN ('payment', 'referral', 'promo'));
ALTER TABLE payments ADD COLUMN source_payment_id bigint REFERENCES payments (id);
CREATE INDEX payments_source ON payments (source_payment_id) WHERE source_payment_id IS NOT NULL;
CREATE INDEX payments_user_kind ON payments (user_id, kind);

-- Promo codes an operator creates. uses counts redemptions; the CHECK is
-- the last guard behind the row lock every redemption takes.
CREATE TABLE promo_codes (
    id          bigserial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code = upper(code)),
    kind        text NOT NULL CHECK (kind IN ('days', 'percent', 'fixed')),
    value       bigint NOT NULL CHECK (value > 0),  -- days, percent, or minor units of currency
    currency    text NOT NULL DEFAULT '',
    plans       text[] NOT NULL DEFAULT '{}',       -- empty: every plan
    max_uses    integer NOT NULL DEFAULT 0 CHECK (max_uses >= 0), -- 0: no limit
    per_user    integer NOT NULL DEFAULT 1 CHECK (per_user > 0),
    uses        integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND (max_uses = 0 OR uses <= max_uses)),
    new_users   boolean NOT NULL DEFAULT false,
    expires_at  timestamptz,
    disabled_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per redemption; n is the user's n-th use of the code, so the
-- key caps a user at per_user whatever runs at once. A discount waits
-- (status pending) for the user's next order, which names it; the payment
-- that pays such an order marks it used.
CREATE TABLE promo_redemptions (
    id         bigserial PRIMARY KEY,
    promo_id   bigint NOT NULL REFERENCES promo_codes (id),
    user_id    bigint NOT NULL REFERENCES users (id),
    n          integer NOT NULL CHECK (n > 0),
    status     text NOT NULL CHECK (status IN ('applied', 'pending', 'used')),
    payment_id bigint REFERENCES payments (id), -- the ledger row: promo days, or the payment a discount went to
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (promo_id, user_id, n)
);
-- One discount waits per user at a time.
CREATE UNIQUE INDEX promo_redemptions_one_pending ON promo_redemptions (user_id) WHERE status = 'pending';

-- An order priced with a discount: what was taken off the plan's price,
-- and the redemption it came from.
ALTER TABLE orders ADD COLUMN discount bigint NOT NULL DEFAULT 0 CHECK (discount >= 0);
ALTER TABLE orders ADD COLUMN redemption_id bigint REFERENCES promo_redemptions (id);

-- +goose Down
ALTER TABLE orders DROP COLUMN redemption_id;
ALTER TABLE orders DROP COLUMN discount;
DROP TABLE promo_redemptions;
DROP TABLE promo_codes;
DROP INDEX payments_user_kind;
DROP INDEX payments_source;
ALTER TABLE payments DROP COLUMN source_payment_id;
ALTER TABLE payments DROP COLUMN kind;
ALTER TABLE users DROP CONSTRAINT users_no_self_referral;
DROP INDEX users_referrer;
DROP INDEX users_referral_code;
ALTER TABLE users DROP COLUMN referral_code;
