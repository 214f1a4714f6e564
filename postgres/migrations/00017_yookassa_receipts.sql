-- +goose Up
-- The email or phone (digits with the country code) a user gave once for
-- fiscal receipts (54-FZ); NULL until asked.
ALTER TABLE users ADD COLUMN receipt_contact text
    CHECK (receipt_contact IS NULL OR receipt_contact ~ '^([0-9]{11,15}|[^@\s]+@[^@\s]+)$');

-- +goose Down
ALTER TABLE users DROP COLUMN receipt_contact;
