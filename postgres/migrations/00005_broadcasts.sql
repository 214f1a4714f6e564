-- +goose Up
-- An admin's /broadcast, kept so a restart loses nothing: the text, who
-- asked (for the report), and the running counts of its outcome. pending
-- reaches 0 exactly once, in the transaction that queues the report.
CREATE TABLE broadcasts (
    id          bigserial PRIMARY KEY,
    text        text NOT NULL CHECK (text <> ''),
    admin_chat  bigint NOT NULL,
    lang        text NOT NULL,
    recipients  integer NOT NULL CHECK (recipients >= 0),
    pending     integer NOT NULL CHECK (pending >= 0),
    sent        integer NOT NULL DEFAULT 0,
    blocked     integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- One row per recipient, fixed when the broadcast is queued: the key makes
-- each user a recipient once, and status leaves 'pending' once, so a
-- retried job skips whoever already has the message.
CREATE TABLE broadcast_recipients (
    broadcast_id bigint NOT NULL REFERENCES broadcasts ON DELETE CASCADE,
    telegram_id  bigint NOT NULL,
    chunk        integer NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'blocked', 'failed')),
    PRIMARY KEY (broadcast_id, telegram_id)
);
CREATE INDEX broadcast_recipients_pending ON broadcast_recipients (broadcast_id, chunk) WHERE status = 'pending';

-- The next free broadcast send slot, shared by every process: each send
-- takes the slot after the last one taken, so the rate holds however many
-- processes and workers send.
CREATE TABLE broadcast_pace (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_at timestamptz NOT NULL
);
INSERT INTO broadcast_pace (next_at) VALUES ('-infinity');

-- +goose Down
DROP TABLE broadcast_pace;
DROP TABLE broadcast_recipients;
DROP TABLE broadcasts;
