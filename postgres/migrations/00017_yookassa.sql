-- +goose Up
-- The email or phone (digits with the country code) a user gave once for
-- fiscal receipts (54-FZ); NULL until asked.
ALTER TABLE users ADD COLUMN receipt_contact text
    CHECK (receipt_contact IS NULL OR receipt_contact ~ '^([0-9]{11,15}|[^@\s]+@[^@\s]+)$');

-- The user's consent to renewals from the card of their next YooKassa
-- payment (/autorenew on); off by default, and off again with Cancel.
ALTER TABLE users ADD COLUMN autorenew_consent boolean NOT NULL DEFAULT false;

-- A card the user agreed to have charged for renewals (YooKassa's saved
-- payment method), one per user; canceled_at set by the user's Cancel or
-- by a charge YooKassa refused for good.
CREATE TABLE autorenewals (
    user_id     bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    provider    text NOT NULL,
    method_id   text NOT NULL,
    plan        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    canceled_at timestamptz
);

-- One charge per user and period (the subscription's expiry it renews),
-- claimed before the provider is called: its key is the Idempotence-Key, so a
-- crash and a retry ask for the same payment and never charge twice.
CREATE TABLE autorenew_charges (
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    period_end timestamptz NOT NULL,
    order_id   bigint NOT NULL REFERENCES orders(id),
    payment_id text,
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, period_end)
);

-- +goose Down
DROP TABLE autorenew_charges;
DROP TABLE autorenewals;
ALTER TABLE users DROP COLUMN autorenew_consent;
ALTER TABLE users DROP COLUMN receipt_contact;
