-- +goose Up
-- The panel's user page lists a user's redemptions; without this it would
-- read every redemption of every code.
CREATE INDEX promo_redemptions_user ON promo_redemptions (user_id);

-- +goose Down
DROP INDEX promo_redemptions_user;
