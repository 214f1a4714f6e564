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

// Credit is a verified payment to apply: the provider's id makes it unique.
type Credit struct {
	Provider          string
	ProviderPaymentID string
	OrderID           int64 // 0: no order (e.g. an admin grant)
	UserID            int64
	Amount            int64
	Currency          string
	Plan              wgbot.Plan
	Raw               []byte // provider's payload, kept for disputes
	Flag              string // why an admin should look, e.g. "banned user"
}

// CreditResult is what applying a Credit did.
type CreditResult struct {
	Duplicate    bool // this payment was credited before; nothing changed
	PaymentID    int64
	Subscription wgbot.Subscription
	NewPeer      *wgbot.Peer // set when the payment issued the first device
	Change       wgbot.Change
}

// CreditPayment records the payment and extends (or creates) the user's
// subscription in the same transaction (I3): a payment is either credited
// with its time or not recorded at all. A repeated delivery finds the row
// and changes nothing. Paying while live extends from the current expiry and
// keeps the same peers and addresses; paying after expiry re-enables the
// user's disabled peers with their addresses.
func (s *Store) CreditPayment(ctx context.Context, c Credit, serverID int64, peer NewPeer, now time.Time) (CreditResult, error) {
	var res CreditResult
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		res = CreditResult{}
		var orderID *int64
		if c.OrderID != 0 {
			orderID = &c.OrderID
		}
		err := tx.QueryRow(ctx, `INSERT INTO payments (provider, provider_payment_id, order_id, user_id, amount, currency, status, days, flagged, raw)
			VALUES ($1, $2, $3, $4, $5, $6, 'credited', $7, $8, $9)
			ON CONFLICT (provider, provider_payment_id) DO NOTHING RETURNING id`,
			c.Provider, c.ProviderPaymentID, orderID, c.UserID, c.Amount, c.Currency, c.Plan.Days, c.Flag, jsonOrNil(c.Raw)).Scan(&res.PaymentID)
		if errors.Is(err, pgx.ErrNoRows) {
			res.Duplicate = true
			return nil
		}
		if err != nil {
			return err
		}
		if orderID != nil {
			// A late payment for an expired or canceled order is still
			// credited: money is never kept without giving time.
			if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'paid', paid_at = $2 WHERE id = $1 AND status <> 'paid'`, c.OrderID, now); err != nil {
				return err
			}
		}
		res.Subscription, res.NewPeer, res.Change, err = s.extend(ctx, tx, c.UserID, c.Plan, serverID, peer, now)
		if err != nil {
			return err
		}
		var peerID *int64
		if res.NewPeer != nil {
			peerID = &res.NewPeer.ID
		}
		if _, err := tx.Exec(ctx, `UPDATE payments SET peer_id = $2, credited_until = $3 WHERE id = $1`,
			res.PaymentID, peerID, res.Subscription.ExpiresAt); err != nil {
			return err
		}
		return s.insertJob(ctx, tx, PaymentCreditedArgs{PaymentID: res.PaymentID}, nil)
	})
	if err != nil {
		return res, fmt.Errorf("credit %s payment %s: %w", c.Provider, c.ProviderPaymentID, err)
	}
	return res, nil
}

// Grant adds days to a user's subscription without a payment (admin).
func (s *Store) Grant(ctx context.Context, userID int64, plan wgbot.Plan, serverID int64, peer NewPeer, now time.Time) (wgbot.Subscription, *wgbot.Peer, wgbot.Change, error) {
	var sub wgbot.Subscription
	var p *wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var err error
		sub, p, ch, err = s.extend(ctx, tx, userID, plan, serverID, peer, now)
		return err
	})
	if err != nil {
		return sub, p, ch, fmt.Errorf("grant %d days to user %d: %w", plan.Days, userID, err)
	}
	return sub, p, ch, nil
}

func (s *Store) extend(ctx context.Context, tx pgx.Tx, userID int64, plan wgbot.Plan, serverID int64, peer NewPeer, now time.Time) (wgbot.Subscription, *wgbot.Peer, wgbot.Change, error) {
	sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE user_id = $1 AND status <> 'revoked' ORDER BY status = 'active' DESC, expires_at DESC LIMIT 1 FOR UPDATE`, userID))
	if errors.Is(err, wgbot.ErrNoSubscription) {
		sub, err = insertSubscription(ctx, tx, userID, plan, false, now)
		if err != nil {
			return sub, nil, wgbot.Change{}, err
		}
		p, ch, err := s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
		return sub, &p, ch, err
	}
	if err != nil {
		return sub, nil, wgbot.Change{}, err
	}
	start := now
	if sub.Status == wgbot.SubscriptionActive && sub.ExpiresAt.After(now) {
		start = sub.ExpiresAt
	}
	withinGrace := s.renewalGrace <= 0 || !now.After(sub.ExpiresAt.Add(s.renewalGrace))
	sub.ExpiresAt = start.AddDate(0, 0, plan.Days)
	sub.DeviceLimit = max(sub.DeviceLimit, plan.Devices)
	sub.Plan = plan.Name
	wasActive := sub.Status == wgbot.SubscriptionActive
	sub.Status = wgbot.SubscriptionActive
	_, err = tx.Exec(ctx, `UPDATE subscriptions SET status = 'active', plan = $2, device_limit = $3, expires_at = $4,
		starts_at = CASE WHEN status = 'active' THEN starts_at ELSE $5 END, updated_at = $5 WHERE id = $1`,
		sub.ID, sub.Plan, sub.DeviceLimit, sub.ExpiresAt, now)
	if constraintOf(err) == "subscriptions_one_active" {
		return sub, nil, wgbot.Change{}, errRetry
	}
	if err != nil || wasActive {
		return sub, nil, wgbot.Change{}, err
	}
	if !withinGrace {
		// Past the renewal grace period the old devices do not come back:
		// their addresses are freed and the renewal issues a new device.
		rows, err := tx.Query(ctx, `UPDATE peers SET status = 'revoked', revoked_at = now()
			WHERE subscription_id = $1 AND status = 'disabled' RETURNING server_id, ip`, sub.ID)
		if err != nil {
			return sub, nil, wgbot.Change{}, err
		}
		if _, err := s.freeAddresses(ctx, tx, rows); err != nil {
			return sub, nil, wgbot.Change{}, err
		}
	}
	// Renewal after expiry, within the grace period: the same peers come
	// back with their addresses, on whichever servers they live.
	rows, err := tx.Query(ctx, `WITH enabled AS (
			UPDATE peers SET status = 'active', disabled_at = NULL WHERE subscription_id = $1 AND status = 'disabled'
			RETURNING server_id)
		SELECT DISTINCT server_id FROM enabled ORDER BY server_id`, sub.ID)
	if err != nil {
		return sub, nil, wgbot.Change{}, err
	}
	servers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return sub, nil, wgbot.Change{}, err
	}
	if len(servers) > 0 {
		var ch wgbot.Change
		for _, id := range servers {
			if ch, err = bumpRevision(ctx, tx, id); err != nil {
				return sub, nil, ch, err
			}
		}
		return sub, nil, ch, nil // one server per deployment today: its change is the one to wait for
	}
	p, ch, err := s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
	return sub, &p, ch, err
}

const subscriptionColumns = `id, user_id, plan, is_trial, status, device_limit, starts_at, expires_at`

func scanSubscription(row pgx.Row) (wgbot.Subscription, error) {
	var sub wgbot.Subscription
	err := row.Scan(&sub.ID, &sub.UserID, &sub.Plan, &sub.IsTrial, &sub.Status, &sub.DeviceLimit, &sub.StartsAt, &sub.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sub, wgbot.ErrNoSubscription
	}
	return sub, err
}

// ActiveSubscription is the user's live subscription, or ErrNoSubscription.
func (s *Store) ActiveSubscription(ctx context.Context, userID int64) (wgbot.Subscription, error) {
	return scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE user_id = $1 AND status = 'active'`, userID))
}

// LatestSubscription is the user's most recent subscription of any status.
func (s *Store) LatestSubscription(ctx context.Context, userID int64) (wgbot.Subscription, error) {
	return scanSubscription(s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE user_id = $1 ORDER BY status = 'active' DESC, expires_at DESC LIMIT 1`, userID))
}

// AddPeer adds a device to the user's live subscription within its limit.
// The subscription row lock serializes two adds racing for the last slot.
func (s *Store) AddPeer(ctx context.Context, userID, serverID int64, peer NewPeer) (wgbot.Peer, wgbot.Change, error) {
	var p wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
			WHERE user_id = $1 AND status = 'active' FOR UPDATE`, userID))
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers WHERE subscription_id = $1 AND status <> 'revoked'`, sub.ID).Scan(&n); err != nil {
			return err
		}
		if n >= sub.DeviceLimit {
			return wgbot.ErrDeviceLimit
		}
		p, ch, err = s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
		return err
	})
	if err != nil {
		return p, ch, fmt.Errorf("add device for user %d: %w", userID, err)
	}
	return p, ch, nil
}

// RemovePeer revokes one of the user's devices. Ownership is checked here,
// in the query, so a forged request for another user's peer finds nothing.
// The address becomes reusable when this commits (after the quarantine).
func (s *Store) RemovePeer(ctx context.Context, userID, peerID int64) (wgbot.Change, error) {
	var ch wgbot.Change
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE peers p SET status = 'revoked', revoked_at = now()
			FROM subscriptions s WHERE p.id = $2 AND p.subscription_id = s.id AND s.user_id = $1 AND p.status <> 'revoked'
			RETURNING p.server_id, p.ip`, userID, peerID)
		if err != nil {
			return err
		}
		freed, err := s.freeAddresses(ctx, tx, rows)
		if err != nil {
			return err
		}
		if len(freed) == 0 {
			return wgbot.ErrPeerNotFound
		}
		ch, err = bumpRevision(ctx, tx, freed[0])
		return err
	})
	if err != nil {
		return ch, fmt.Errorf("remove device %d of user %d: %w", peerID, userID, err)
	}
	return ch, nil
}

// DeletePeer removes a peer that was never delivered (its first apply
// failed) as if it had not been issued; for a trial the trial row goes too,
// so the trial is not burned. The address is free again at once.
func (s *Store) DeletePeer(ctx context.Context, peerID int64, dropTrial bool) (wgbot.Change, error) {
	var ch wgbot.Change
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var serverID, subID int64
		var ip netip.Addr
		// A peer revoked meanwhile (its address may already be someone
		// else's) or one whose user has paid meanwhile (the payment bought
		// it) is not taken back.
		err := tx.QueryRow(ctx, `DELETE FROM peers p WHERE p.id = $1 AND p.status <> 'revoked'
			AND NOT EXISTS (SELECT 1 FROM payments pay JOIN subscriptions s ON s.user_id = pay.user_id
				WHERE s.id = p.subscription_id AND pay.applied_at >= p.created_at)
			RETURNING p.server_id, p.subscription_id, p.ip`, peerID).Scan(&serverID, &subID, &ip)
		if errors.Is(err, pgx.ErrNoRows) {
			return wgbot.ErrPeerNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO free_addresses (server_id, ip) VALUES ($1, $2) ON CONFLICT DO NOTHING`, serverID, ip); err != nil {
			return err
		}
		if dropTrial {
			if _, err := tx.Exec(ctx, `DELETE FROM subscriptions WHERE id = $1 AND is_trial
				AND NOT EXISTS (SELECT 1 FROM peers WHERE subscription_id = $1)`, subID); err != nil {
				return err
			}
		}
		ch, err = bumpRevision(ctx, tx, serverID)
		return err
	})
	if err != nil {
		return ch, fmt.Errorf("delete undelivered peer %d: %w", peerID, err)
	}
	return ch, nil
}

// Revoke ends the user's subscription now and revokes every device.
func (s *Store) Revoke(ctx context.Context, userID int64) ([]wgbot.Change, error) {
	var changes []wgbot.Change
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		changes, err = s.revokeTx(ctx, tx, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revoke user %d: %w", userID, err)
	}
	return changes, nil
}

func (s *Store) revokeTx(ctx context.Context, tx pgx.Tx, userID int64) ([]wgbot.Change, error) {
	tag, err := tx.Exec(ctx, `UPDATE subscriptions SET status = 'revoked', updated_at = now() WHERE user_id = $1 AND status = 'active'`, userID)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `UPDATE peers p SET status = 'revoked', revoked_at = now()
		FROM subscriptions s WHERE p.subscription_id = s.id AND s.user_id = $1 AND p.status <> 'revoked'
		RETURNING p.server_id, p.ip`, userID)
	if err != nil {
		return nil, err
	}
	servers, err := s.freeAddresses(ctx, tx, rows)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 && len(servers) == 0 {
		return nil, wgbot.ErrNoSubscription
	}
	var changes []wgbot.Change
	for _, id := range servers {
		ch, err := bumpRevision(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// freeAddresses puts the (server_id, ip) rows into the free list and
// returns the distinct servers touched.
func (s *Store) freeAddresses(ctx context.Context, tx pgx.Tx, rows pgx.Rows) ([]int64, error) {
	type freed struct {
		server int64
		ip     netip.Addr
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (freed, error) {
		var f freed
		return f, r.Scan(&f.server, &f.ip)
	})
	if err != nil {
		return nil, err
	}
	var servers []int64
	seen := map[int64]bool{}
	for _, f := range list {
		_, err := tx.Exec(ctx, `INSERT INTO free_addresses (server_id, ip, available_at) VALUES ($1, $2, now() + $3::interval)
			ON CONFLICT (server_id, ip) DO UPDATE SET available_at = EXCLUDED.available_at`, f.server, f.ip, s.quarantine)
		if err != nil {
			return nil, err
		}
		if !seen[f.server] {
			seen[f.server] = true
			servers = append(servers, f.server)
		}
	}
	return servers, nil
}

// Expired is a subscription ExpireDue ended.
type Expired struct {
	SubscriptionID int64
	UserID         int64
	TelegramID     int64
	Language       string
	ExpiresAt      time.Time
}

// ExpireDue ends every active subscription whose time is up and disables
// its peers (addresses kept for a renewal). Safe to run from several
// processes at once: SKIP LOCKED hands each row to exactly one of them.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]Expired, []wgbot.Change, error) {
	var expired []Expired
	var changes []wgbot.Change
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE subscriptions s SET status = 'expired', updated_at = $1
			FROM (SELECT id FROM subscriptions WHERE status = 'active' AND expires_at <= $1
			      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) due, users u
			WHERE s.id = due.id AND u.id = s.user_id
			RETURNING s.id, s.user_id, u.telegram_id, u.language, s.expires_at`, now, limit)
		if err != nil {
			return err
		}
		expired, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Expired, error) {
			var e Expired
			return e, r.Scan(&e.SubscriptionID, &e.UserID, &e.TelegramID, &e.Language, &e.ExpiresAt)
		})
		if err != nil || len(expired) == 0 {
			return err
		}
		ids := make([]int64, len(expired))
		for i, e := range expired {
			ids[i] = e.SubscriptionID
			if err := s.insertJob(ctx, tx, SubscriptionExpiredArgs{SubscriptionID: e.SubscriptionID, ExpiresAt: e.ExpiresAt.UTC()}, nil); err != nil {
				return err
			}
		}
		rows, err = tx.Query(ctx, `WITH disabled AS (UPDATE peers SET status = 'disabled', disabled_at = $2
			WHERE subscription_id = ANY($1) AND status = 'active' RETURNING server_id)
			SELECT DISTINCT server_id FROM disabled`, ids, now)
		if err != nil {
			return err
		}
		servers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		changes = nil
		for _, id := range servers {
			ch, err := bumpRevision(ctx, tx, id)
			if err != nil {
				return err
			}
			changes = append(changes, ch)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("expire subscriptions: %w", err)
	}
	return expired, changes, nil
}

// SealedPeer is a peer with its sealed keys, for config delivery and the
// reconciler.
type SealedPeer struct {
	wgbot.Peer
	Secrets wgbot.PeerSecrets
}

const peerColumns = `p.id, p.subscription_id, p.server_id, p.name, p.ip, p.ip6, p.public_key, p.status, p.created_at,
	p.private_key_enc, p.preshared_key_enc, p.key_id`

func scanSealedPeer(row pgx.CollectableRow) (SealedPeer, error) {
	var p SealedPeer
	var ip6 *netip.Addr
	err := row.Scan(&p.ID, &p.SubscriptionID, &p.ServerID, &p.Name, &p.IP, &ip6, &p.PublicKey, &p.Status, &p.CreatedAt,
		&p.Secrets.PrivateKeySealed, &p.Secrets.PresharedSealed, &p.Secrets.KeyID)
	if ip6 != nil {
		p.IP6 = *ip6
	}
	p.Secrets.PublicKey = p.PublicKey
	return p, err
}

// DesiredPeers is the server's active peers and the revision they belong
// to, read in one snapshot so the reconciler knows exactly what it applied.
func (s *Store) DesiredPeers(ctx context.Context, serverID int64) ([]SealedPeer, int64, error) {
	var peers []SealedPeer
	var revision int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT revision FROM servers WHERE id = $1`, serverID).Scan(&revision); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+peerColumns+` FROM peers p WHERE p.server_id = $1 AND p.status = 'active' ORDER BY p.id`, serverID)
		if err != nil {
			return err
		}
		peers, err = pgx.CollectRows(rows, scanSealedPeer)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read desired peers of server %d: %w", serverID, err)
	}
	return peers, revision, nil
}

// UserPeer returns one of the user's devices with its sealed keys; another
// user's peer id is not found.
func (s *Store) UserPeer(ctx context.Context, userID, peerID int64) (SealedPeer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+` FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
		WHERE p.id = $2 AND s.user_id = $1 AND p.status <> 'revoked'`, userID, peerID)
	if err != nil {
		return SealedPeer{}, err
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanSealedPeer)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, wgbot.ErrPeerNotFound
	}
	return p, err
}

// UserPeers lists the user's devices that are not revoked.
func (s *Store) UserPeers(ctx context.Context, userID int64) ([]wgbot.Peer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+` FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
		WHERE s.user_id = $1 AND p.status <> 'revoked' ORDER BY p.id`, userID)
	if err != nil {
		return nil, err
	}
	sealed, err := pgx.CollectRows(rows, scanSealedPeer)
	peers := make([]wgbot.Peer, len(sealed))
	for i, p := range sealed {
		peers[i] = p.Peer
	}
	return peers, err
}

func jsonOrNil(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// ResealPeers re-seals, in batches of one transaction each, the keys of
// every peer sealed by a key other than currentID, with what reseal
// returns; afterwards the old master key can be retired.
func (s *Store) ResealPeers(ctx context.Context, currentID string, reseal func(SealedPeer) (wgbot.PeerSecrets, error)) (int, error) {
	total := 0
	for {
		n := 0
		err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT `+peerColumns+` FROM peers p WHERE p.key_id <> $1 ORDER BY p.id LIMIT 500 FOR UPDATE SKIP LOCKED`, currentID)
			if err != nil {
				return err
			}
			peers, err := pgx.CollectRows(rows, scanSealedPeer)
			if err != nil {
				return err
			}
			for _, p := range peers {
				sec, err := reseal(p)
				if err != nil {
					return fmt.Errorf("peer %d: %w", p.ID, err)
				}
				if _, err := tx.Exec(ctx, `UPDATE peers SET private_key_enc = $2, preshared_key_enc = $3, key_id = $4 WHERE id = $1`,
					p.ID, sec.PrivateKeySealed, sec.PresharedSealed, sec.KeyID); err != nil {
					return err
				}
			}
			n = len(peers)
			return nil
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}
