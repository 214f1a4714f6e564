package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// PaymentNotice is what the user is told about one credited payment.
type PaymentNotice struct {
	User         wgbot.User
	Subscription wgbot.Subscription
	Peer         *SealedPeer // the device the payment issued, if any
	Refunded     bool
}

// PaymentNotice loads a credited payment's user, subscription and device.
func (s *Store) PaymentNotice(ctx context.Context, paymentID int64) (PaymentNotice, error) {
	var n PaymentNotice
	var userID int64
	var peerID *int64
	var status string
	err := s.pool.QueryRow(ctx, `SELECT user_id, peer_id, status FROM payments WHERE id = $1`, paymentID).Scan(&userID, &peerID, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return n, wgbot.ErrPaymentNotFound
	}
	if err != nil {
		return n, fmt.Errorf("payment %d: %w", paymentID, err)
	}
	n.Refunded = status == "refunded"
	if n.User, err = s.UserByID(ctx, userID); err != nil {
		return n, err
	}
	if n.Subscription, err = s.LatestSubscription(ctx, userID); err != nil {
		return n, err
	}
	if peerID != nil {
		p, err := s.UserPeer(ctx, userID, *peerID)
		if err == nil {
			n.Peer = &p
		} else if !errors.Is(err, wgbot.ErrPeerNotFound) {
			return n, err
		}
	}
	return n, nil
}

// SubscriptionNotice loads a subscription with its user, for expiry and
// reminder messages.
func (s *Store) SubscriptionNotice(ctx context.Context, subID int64) (wgbot.User, wgbot.Subscription, error) {
	sub, err := scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, subID))
	if err != nil {
		return wgbot.User{}, sub, err
	}
	u, err := s.UserByID(ctx, sub.UserID)
	return u, sub, err
}

// Revision is the server's current revision: waiting for it means waiting
// for everything committed so far.
func (s *Store) Revision(ctx context.Context, serverID int64) (wgbot.Change, error) {
	ch := wgbot.Change{ServerID: serverID}
	err := s.pool.QueryRow(ctx, `SELECT revision FROM servers WHERE id = $1`, serverID).Scan(&ch.Revision)
	return ch, err
}

// PurgeDisabled revokes peers that stayed disabled (their subscription
// expired) since before cutoff, freeing their addresses: the renewal grace
// period is over.
func (s *Store) PurgeDisabled(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE peers SET status = 'revoked', revoked_at = now()
			WHERE status = 'disabled' AND disabled_at < $1 RETURNING server_id, ip`, cutoff)
		if err != nil {
			return err
		}
		servers, err := s.freeAddresses(ctx, tx, rows)
		n = len(servers)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge disabled peers: %w", err)
	}
	return n, nil
}
