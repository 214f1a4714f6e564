-- +goose Up
-- The provider checkout made for an order, so a second Pay press (or a
-- retried one after a lost answer) shows the same checkout instead of
-- opening another: checkout_url is what the payer was sent, checkout_tries
-- counts attempts to create it (more than one: an earlier attempt may have
-- created a checkout whose answer was lost), and checkout_claimed_until is
-- the lease of the process creating it now, so two processes never create
-- two (no lock is held across the provider call).
ALTER TABLE orders ADD COLUMN checkout_url text NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN checkout_tries integer NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN checkout_claimed_until timestamptz;
-- A user's open orders, looked up on every Pay press.
CREATE INDEX orders_user_pending ON orders (user_id, created_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX orders_user_pending;
ALTER TABLE orders DROP COLUMN checkout_claimed_until;
ALTER TABLE orders DROP COLUMN checkout_tries;
ALTER TABLE orders DROP COLUMN checkout_url;
