-- +goose Up
-- Import (issue 20): peers taken over from an existing WireGuard server.
--
-- An imported client whose owner is not known yet has a subscription of
-- its own with no user until someone opens its claim link.
ALTER TABLE subscriptions ALTER COLUMN user_id DROP NOT NULL;
-- A peer imported from a wg-quick file has no private key wgbot knows
-- (the client made it): private_key_enc is then empty, and nothing can
-- show the client's config again. An empty preshared_key_enc is a peer
-- with no preshared key. keepalive is the peer's own persistent keepalive
-- as the old server had it (NULL: the server's WG_KEEPALIVE), so the
-- device needs no change at the takeover. imported_from names the source.
ALTER TABLE peers
    ADD COLUMN keepalive integer CHECK (keepalive BETWEEN 0 AND 65535),
    ADD COLUMN imported_from text NOT NULL DEFAULT '',
    ADD COLUMN note text NOT NULL DEFAULT '';

-- One-time claim links of imported devices. Only a hash of the token is
-- kept: the link is a credential, and the database never holds it.
CREATE TABLE peer_claims (
    token_hash      bytea PRIMARY KEY,
    peer_id         bigint NOT NULL UNIQUE REFERENCES peers (id),
    subscription_id bigint NOT NULL REFERENCES subscriptions (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    claimed_by      bigint REFERENCES users (id),
    claimed_at      timestamptz
);

-- +goose Down
DROP TABLE peer_claims;
ALTER TABLE peers DROP COLUMN note, DROP COLUMN imported_from, DROP COLUMN keepalive;
ALTER TABLE subscriptions ALTER COLUMN user_id SET NOT NULL;
