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

-- +goose Down
DROP TABLE star_subscriptions;
