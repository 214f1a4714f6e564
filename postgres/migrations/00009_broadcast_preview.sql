-- +goose Up
-- The preview a broadcast was sent from (the admin's chat and the preview
-- message), unique: a second Send on the same preview (two taps, or two
-- webhook processes handling them) queues nothing. Older rows have none.
ALTER TABLE broadcasts ADD COLUMN preview_message bigint;
CREATE UNIQUE INDEX broadcasts_preview ON broadcasts (admin_chat, preview_message) WHERE preview_message IS NOT NULL;

-- An order cancelled because a newer order of its user replaced it (past
-- the open orders kept per user) names that order: it is no failed
-- payment, unlike one the provider cancelled or one that expired unpaid.
ALTER TABLE orders ADD COLUMN replaced_by bigint;

-- +goose Down
ALTER TABLE orders DROP COLUMN replaced_by;
DROP INDEX broadcasts_preview;
ALTER TABLE broadcasts DROP COLUMN preview_message;
