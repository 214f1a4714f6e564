-- +goose Up
-- Locations (issue 16): the location a user chose for their new devices
-- (no row: wherever there is room), and a moved device's old peer, which
-- is revoked at retire_at unless the user confirms the new one earlier.
CREATE TABLE user_locations (
    user_id   bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    location  text NOT NULL,
    chosen_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE peers ADD COLUMN retire_at timestamptz;
CREATE INDEX peers_retiring ON peers (retire_at) WHERE retire_at IS NOT NULL AND status <> 'revoked';

-- +goose Down
DROP INDEX peers_retiring;
ALTER TABLE peers DROP COLUMN retire_at;
DROP TABLE user_locations;
