-- +goose Up
-- Device names a person can tell apart (issue 17): every device a user is
-- issued takes the next number of the user's own counter, so no name or
-- config file name is ever handed out twice, whatever was removed; the
-- user may rename a device, and renaming_peer_id holds the device whose
-- new name the bot is waiting for, until renaming_until.
ALTER TABLE users ADD COLUMN devices_named integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN renaming_peer_id bigint;
ALTER TABLE users ADD COLUMN renaming_until timestamptz;
ALTER TABLE peers ADD COLUMN number integer NOT NULL DEFAULT 0;

UPDATE peers p SET number = n.number
FROM (SELECT p.id, row_number() OVER (PARTITION BY s.user_id ORDER BY p.id) AS number
      FROM peers p JOIN subscriptions s ON s.id = p.subscription_id) n
WHERE n.id = p.id;

-- Past the highest number in use, and past any device-N name, so the next
-- device repeats neither.
UPDATE users u SET devices_named = greatest(
    (SELECT max(p.number) FROM peers p JOIN subscriptions s ON s.id = p.subscription_id WHERE s.user_id = u.id),
    (SELECT max(substring(p.name FROM '^device-([0-9]{1,9})$')::int)
     FROM peers p JOIN subscriptions s ON s.id = p.subscription_id WHERE s.user_id = u.id), 0);

-- +goose Down
ALTER TABLE peers DROP COLUMN number;
ALTER TABLE users DROP COLUMN renaming_until;
ALTER TABLE users DROP COLUMN renaming_peer_id;
ALTER TABLE users DROP COLUMN devices_named;
