package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// The operator's queries: what `wgbot users`, `wgbot peers` and `wgbot
// issue` read and do. Reads never touch sealed keys.

// UserSummary is one row of the operator's user list.
type UserSummary struct {
	wgbot.User
	Subscription *wgbot.Subscription // the current (or last) one; nil if none
	Devices      int                 // peers that are not revoked
}

// ListUsers lists every user in id order with their current subscription
// (the live one, else the one that ended last) and device count.
func (s *Store) ListUsers(ctx context.Context) ([]UserSummary, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.id, u.telegram_id, u.username, u.first_name, u.language, COALESCE(u.referrer_id, 0),
			u.blocked_bot, u.banned, u.created_at,
			s.id, s.plan, s.is_trial, s.status, s.device_limit, s.starts_at, s.expires_at,
			(SELECT count(*) FROM peers p JOIN subscriptions ps ON ps.id = p.subscription_id
			 WHERE ps.user_id = u.id AND p.status <> 'revoked')
		FROM users u
		LEFT JOIN LATERAL (SELECT * FROM subscriptions WHERE user_id = u.id
			ORDER BY status = 'active' DESC, expires_at DESC LIMIT 1) s ON true
		ORDER BY u.id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (UserSummary, error) {
		var us UserSummary
		u := &us.User
		var subID *int64
		var plan, status *string
		var trial *bool
		var limit *int
		var starts, expires *time.Time
		err := row.Scan(&u.ID, &u.TelegramID, &u.Username, &u.FirstName, &u.Language, &u.ReferrerID, &u.BlockedBot, &u.Banned, &u.CreatedAt,
			&subID, &plan, &trial, &status, &limit, &starts, &expires, &us.Devices)
		if err == nil && subID != nil {
			us.Subscription = &wgbot.Subscription{ID: *subID, UserID: u.ID, Plan: *plan, IsTrial: *trial, Status: *status,
				DeviceLimit: *limit, StartsAt: *starts, ExpiresAt: *expires}
		}
		return us, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return list, nil
}

// Subscriptions lists all of a user's subscriptions, newest first.
func (s *Store) Subscriptions(ctx context.Context, userID int64) ([]wgbot.Subscription, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of user %d: %w", userID, err)
	}
	subs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (wgbot.Subscription, error) { return scanSubscription(row) })
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of user %d: %w", userID, err)
	}
	return subs, nil
}

// PeerFilter narrows ListPeers; zero fields match everything.
type PeerFilter struct {
	Server string // server name
	Status string // wgbot.PeerActive, PeerDisabled or PeerRevoked
	UserID int64
}

// PeerListing is a peer with whom it belongs to, for the operator.
type PeerListing struct {
	wgbot.Peer
	Server     string
	TelegramID int64
	Username   string
}

// ListPeers lists peers in id order, revoked ones included unless the
// filter says otherwise.
func (s *Store) ListPeers(ctx context.Context, f PeerFilter) ([]PeerListing, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.id, p.subscription_id, p.server_id, p.name, p.ip, p.ip6, p.public_key, p.status, p.created_at,
			sv.name, u.telegram_id, u.username
		FROM peers p
		JOIN servers sv ON sv.id = p.server_id
		JOIN subscriptions s ON s.id = p.subscription_id
		JOIN users u ON u.id = s.user_id
		WHERE ($1 = '' OR sv.name = $1) AND ($2 = '' OR p.status = $2) AND ($3 = 0 OR u.id = $3)
		ORDER BY p.id`, f.Server, f.Status, f.UserID)
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PeerListing, error) {
		var pl PeerListing
		p := &pl.Peer
		var ip6 *netip.Addr
		err := row.Scan(&p.ID, &p.SubscriptionID, &p.ServerID, &p.Name, &p.IP, &ip6, &p.PublicKey, &p.Status, &p.CreatedAt,
			&pl.Server, &pl.TelegramID, &pl.Username)
		if ip6 != nil {
			p.IP6 = *ip6
		}
		return pl, err
	})
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	return list, nil
}

// ServerNames lists the servers' names, to tell an operator who mistyped
// one what exists.
func (s *Store) ServerNames(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// PaymentRecord is one credited (or refunded) payment.
type PaymentRecord struct {
	ID                int64
	Provider          string
	ProviderPaymentID string
	OrderID           int64 // 0: none (e.g. an admin grant)
	Amount            int64 // minor units
	Currency          string
	Status            string // credited or refunded
	Days              int
	Flagged           string
	AppliedAt         time.Time
	RefundedAt        *time.Time
}

// UserPayments lists a user's payments in the order they arrived.
func (s *Store) UserPayments(ctx context.Context, userID int64) ([]PaymentRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, provider, provider_payment_id, COALESCE(order_id, 0), amount, currency, status,
			days, flagged, applied_at, refunded_at
		FROM payments WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list payments of user %d: %w", userID, err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[PaymentRecord])
	if err != nil {
		return nil, fmt.Errorf("list payments of user %d: %w", userID, err)
	}
	return list, nil
}

// IssueDevice is the operator's `wgbot issue`: it adds plan.Days to the
// user's subscription as Grant does (creating it, extending it, or renewing
// an ended one with its devices) and makes sure the result includes one
// new device. Both happen in one transaction, so a device limit that stops
// the new device also leaves the days ungranted. An empty peer.Name is
// filled in as device-N, N counting every device the user ever had.
func (s *Store) IssueDevice(ctx context.Context, userID int64, plan wgbot.Plan, serverID int64, peer NewPeer, now time.Time) (wgbot.Subscription, wgbot.Peer, wgbot.Change, error) {
	var sub wgbot.Subscription
	var p wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		if peer.Name == "" {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
				WHERE s.user_id = $1`, userID).Scan(&n); err != nil {
				return err
			}
			peer.Name = fmt.Sprintf("device-%d", n+1)
		}
		var issued *wgbot.Peer
		var err error
		sub, issued, ch, err = s.extend(ctx, tx, userID, plan, serverID, peer, now)
		if err != nil {
			return err
		}
		if issued != nil {
			p = *issued
			return nil
		}
		// The subscription already had devices (kept, or re-enabled by a
		// renewal): add one more within its limit.
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers WHERE subscription_id = $1 AND status <> 'revoked'`, sub.ID).Scan(&n); err != nil {
			return err
		}
		if n >= sub.DeviceLimit {
			return fmt.Errorf("%w: %d of %d devices in use; pass a larger device limit (--devices %d)",
				wgbot.ErrDeviceLimit, n, sub.DeviceLimit, n+1)
		}
		p, ch, err = s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
		return err
	})
	if err != nil {
		if errors.Is(err, wgbot.ErrDeviceLimit) {
			return sub, p, ch, err
		}
		return sub, p, ch, fmt.Errorf("issue a device to user %d: %w", userID, err)
	}
	return sub, p, ch, nil
}

// NotifyServer asks every reconciler listening for the server to reconcile
// again, as a committed change does, without changing anything. The
// operator CLI sends it after its own reconcile: had that reconcile read
// an older snapshot than a concurrent `wgbot serve` had just applied, the
// serve process puts the newer state back at once instead of at its next
// periodic resync.
func (s *Store) NotifyServer(ctx context.Context, serverID, revision int64) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, fmt.Sprintf("%d:%d", serverID, revision))
	if err != nil {
		return fmt.Errorf("notify server %d: %w", serverID, err)
	}
	return nil
}
