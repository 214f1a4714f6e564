-- +goose Up
-- Auto-renewing Telegram Stars subscriptions and gifts (issue 18). Each
-- charge of a subscription, and each redeemed gift, is one row of the
-- payments ledger under its own UNIQUE key (I10): a charge by its
-- telegram_payment_charge_id, a gift by gift:<gift id>.

-- A Stars subscription: Telegram charges it every 30 days until it is
-- cancelled; every charge carries the payload of the first invoice, so
-- each is credited against that order. charge_id (the first charge) names
-- it to editUserStarSubscription. renews_at is Telegram's
-- subscription_expiration_date of the latest charge.
CREATE TABLE star_subscriptions (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    order_id    bigint NOT NULL UNIQUE REFERENCES orders (id),
    charge_id   text NOT NULL UNIQUE,
    renews_at   timestamptz NOT NULL,
    canceled_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX star_subscriptions_user ON star_subscriptions (user_id, renews_at);

-- Gifts: a plan bought for someone else. The buyer's payment is an
-- ordinary ledger row with no days; the days go to whoever redeems the
-- gift's one-time link first, as a ledger row of kind gift keyed
-- gift:<gift id>. The gift's row lock orders a redemption and a refund:
-- a redeemed gift is not refunded, a refunded one is not redeemed.
ALTER TABLE orders ADD COLUMN gift boolean NOT NULL DEFAULT false;
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check CHECK (kind IN ('payment', 'referral', 'promo', 'gift'));
CREATE TABLE gifts (
    id          bigserial PRIMARY KEY,
    token       text NOT NULL UNIQUE,
    order_id    bigint NOT NULL UNIQUE REFERENCES orders (id),
    payment_id  bigint NOT NULL UNIQUE REFERENCES payments (id),
    buyer_id    bigint NOT NULL REFERENCES users (id),
    plan        text NOT NULL,
    days        integer NOT NULL CHECK (days > 0),
    devices     integer NOT NULL CHECK (devices > 0),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'redeemed', 'refunded')),
    redeemed_by bigint REFERENCES users (id),
    redeemed_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'redeemed') = (redeemed_by IS NOT NULL))
);

-- +goose Down
DROP TABLE gifts;
DELETE FROM payments WHERE kind = 'gift';
ALTER TABLE payments DROP CONSTRAINT payments_kind_check;
ALTER TABLE payments ADD CONSTRAINT payments_kind_check CHECK (kind IN ('payment', 'referral', 'promo'));
ALTER TABLE orders DROP COLUMN gift;
DROP TABLE star_subscriptions;
