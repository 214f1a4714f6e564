-- +goose Up
-- The payer's consent at checkout to renewals from the card they pay this
-- order with (the checkbox under YooKassa's Pay button). It is part of the
-- order, not only of the user: a checkout made without it is never reused
-- for one that needs it, and the other way round.
ALTER TABLE orders ADD COLUMN save_card boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE orders DROP COLUMN save_card;
