-- +goose Up
-- Telegram update ids the bot has already taken, so an update Telegram
-- delivers twice (a redelivery after a crash, a webhook retry, two
-- processes) is handled once. Ids are per bot, hence the bot id in the key.
-- Telegram forgets unconfirmed updates after 24 hours; rows older than the
-- bot's retention are pruned.
CREATE TABLE telegram_updates (
    bot_id    bigint NOT NULL,
    update_id bigint NOT NULL,
    seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX telegram_updates_seen_at ON telegram_updates (seen_at);

-- +goose Down
DROP TABLE telegram_updates;
