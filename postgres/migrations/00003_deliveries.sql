-- +goose Up
-- I9 for devices: a new device's config reaches its user at least once and,
-- normally, exactly once. The request that issued the device and its
-- device_issued job (an outbox row written in the issuing transaction) both
-- claim the delivery here before sending: whichever claims first sends, the
-- other finds it done. A sender that dies leaves a claim that lapses, and
-- the job sends instead.
ALTER TABLE peers
    ADD COLUMN delivered_at           timestamptz, -- the config document reached Telegram
    ADD COLUMN delivery_claimed_until timestamptz; -- a sender is at it until then
-- Devices issued before deliveries were tracked have no job to wait for.
UPDATE peers SET delivered_at = created_at;

-- +goose Down
ALTER TABLE peers DROP COLUMN delivery_claimed_until, DROP COLUMN delivered_at;
