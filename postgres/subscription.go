package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
	"wgbot/jobs/jobargs"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

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

// IssueTrial creates the user's one trial subscription with one peer, and
// the job that delivers its config.
func (s *Store) IssueTrial(ctx context.Context, userID, serverID int64, plan wgbot.Plan, peer NewPeer, now time.Time) (wgbot.Subscription, wgbot.Peer, wgbot.Change, error) {
	var sub wgbot.Subscription
	var p wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var err error
		sub, err = insertSubscription(ctx, tx, userID, plan, true, now)
		if err != nil {
			return err
		}
		if err := s.insertJob(ctx, tx, jobargs.DeviceIssued{PublicKey: peer.Secrets.PublicKey, Reason: jobargs.IssuedTrial}, deviceIssuedOpts(peer)); err != nil {
			return err
		}
		p, ch, err = s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
		return err
	})
	if err != nil {
		return sub, p, ch, fmt.Errorf("issue trial for user %d: %w", userID, err)
	}
	return sub, p, ch, nil
}

func insertSubscription(ctx context.Context, tx pgx.Tx, userID int64, plan wgbot.Plan, trial bool, now time.Time) (wgbot.Subscription, error) {
	sub := wgbot.Subscription{UserID: userID, Plan: plan.Name, IsTrial: trial, Status: wgbot.SubscriptionActive,
		DeviceLimit: plan.Devices, StartsAt: now, ExpiresAt: now.AddDate(0, 0, plan.Days)}
	err := tx.QueryRow(ctx, `INSERT INTO subscriptions (user_id, plan, is_trial, status, device_limit, starts_at, expires_at)
		VALUES ($1, $2, $3, 'active', $4, $5, $6) RETURNING id`,
		userID, plan.Name, trial, plan.Devices, now, sub.ExpiresAt).Scan(&sub.ID)
	switch constraintOf(err) {
	case "subscriptions_one_trial":
		return sub, wgbot.ErrTrialUsed
	case "subscriptions_one_active":
		if trial {
			return sub, wgbot.ErrHasAccess
		}
		return sub, errRetry // a concurrent payment created it first: extend it instead
	}
	return sub, err
}

// Grant adds days to a user's subscription without a payment (admin);
// when that issues a device, the job that delivers its config goes with it.
// Whether it does is known only once the subscription is locked, so the
// job is inserted first, before the allocator's lock, for the device that
// may be issued: when none is (a live subscription is extended), the job
// finds no peer with that key and ends.
func (s *Store) Grant(ctx context.Context, userID int64, plan wgbot.Plan, serverID int64, peer NewPeer, now time.Time) (wgbot.Subscription, *wgbot.Peer, wgbot.Change, error) {
	sub, p, ch, err := s.grant(ctx, userID, plan, serverID, peer, now, false)
	if err != nil {
		return sub, p, ch, fmt.Errorf("grant %d days to user %d: %w", plan.Days, userID, err)
	}
	return sub, p, ch, nil
}

// IssueDevice is the operator's `wgbot issue`: it adds plan.Days to the
// user's subscription as Grant does (creating it, extending it, or renewing
// an ended one with its devices) and makes sure the result includes one
// new device. Both happen in one transaction, so a device limit that stops
// the new device also leaves the days ungranted. An empty peer.Name is
// filled in as device-N, N counting every device the user ever had (as for
// every new device). The
// operator is handed the config; no job sends it to the user.
func (s *Store) IssueDevice(ctx context.Context, userID int64, plan wgbot.Plan, serverID int64, peer NewPeer, now time.Time) (wgbot.Subscription, wgbot.Peer, wgbot.Change, error) {
	sub, p, ch, err := s.grant(ctx, userID, plan, serverID, peer, now, true)
	switch {
	case errors.Is(err, wgbot.ErrDeviceLimit):
		return sub, wgbot.Peer{}, ch, err
	case err != nil:
		return sub, wgbot.Peer{}, ch, fmt.Errorf("issue a device to user %d: %w", userID, err)
	}
	return sub, *p, ch, nil
}

// grant is Grant and, with device, IssueDevice: one transaction that
// extends the subscription and, with device, adds one new device within
// its limit when the extension issued none.
func (s *Store) grant(ctx context.Context, userID int64, plan wgbot.Plan, serverID int64, peer NewPeer, now time.Time, device bool) (wgbot.Subscription, *wgbot.Peer, wgbot.Change, error) {
	var sub wgbot.Subscription
	var p *wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		trail, err := beginAudit(ctx, tx, userID)
		if err != nil {
			return err
		}
		if sub, p, ch, err = s.grantTx(ctx, tx, userID, plan, serverID, peer, now, device); err != nil {
			return err
		}
		return trail.done(ctx, tx)
	})
	return sub, p, ch, err
}

// grantTx is grant's one business step inside its transaction.
func (s *Store) grantTx(ctx context.Context, tx pgx.Tx, userID int64, plan wgbot.Plan, serverID int64, peer NewPeer, now time.Time, device bool) (wgbot.Subscription, *wgbot.Peer, wgbot.Change, error) {
	if !device {
		err := s.insertJob(ctx, tx, jobargs.DeviceIssued{PublicKey: peer.Secrets.PublicKey, Reason: jobargs.IssuedGrant, Days: plan.Days}, deviceIssuedOpts(peer))
		if err != nil {
			return wgbot.Subscription{}, nil, wgbot.Change{}, err
		}
	}
	sub, p, ch, err := s.extend(ctx, tx, userID, plan, serverID, peer, now)
	if err != nil || p != nil || !device {
		return sub, p, ch, err
	}
	// The subscription already had devices (kept, or re-enabled by a
	// renewal): add one more within its limit.
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers WHERE subscription_id = $1 AND status <> 'revoked'`, sub.ID).Scan(&n); err != nil {
		return sub, nil, ch, err
	}
	if err := wgbot.CanAddDevice(sub, n); err != nil {
		return sub, nil, ch, fmt.Errorf("%w: %d of %d devices in use; pass a larger device limit (--devices %d)",
			err, n, sub.DeviceLimit, n+1)
	}
	added, ch, err := s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
	return sub, &added, ch, err
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
	renewal := wgbot.Renew(sub, plan, now, s.renewalGrace)
	sub.ExpiresAt, sub.DeviceLimit = renewal.ExpiresAt, renewal.DeviceLimit
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
	if !renewal.Restore {
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
			UPDATE peers SET status = 'active', disabled_at = NULL, disabled_reason = NULL WHERE subscription_id = $1 AND status = 'disabled'
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

const subscriptionColumns = `id, COALESCE(user_id, 0), plan, is_trial, status, device_limit, starts_at, expires_at`

// scanSubscription scans subscriptionColumns; UserID is 0 for an imported
// subscription nobody claimed yet.
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

// Revoke ends the user's subscription now and revokes every device.
func (s *Store) Revoke(ctx context.Context, userID int64) ([]wgbot.Change, error) {
	return s.revoke(ctx, userID, nil)
}

// revoke is Revoke after confirm, when set, accepted in the same
// transaction.
func (s *Store) revoke(ctx context.Context, userID int64, confirm func(pgx.Tx) error) ([]wgbot.Change, error) {
	var changes []wgbot.Change
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		trail, err := beginAudit(ctx, tx, userID)
		if err != nil {
			return err
		}
		if confirm != nil {
			if err := confirm(tx); err != nil {
				return err
			}
		}
		if changes, err = s.revokeTx(ctx, tx, userID); err != nil {
			return err
		}
		return trail.done(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("revoke user %d: %w", userID, err)
	}
	return changes, nil
}

// Ban bars the user and ends their access, in one transaction: the user
// row's lock makes concurrent bans (two presses, two processes) take
// turns, so changed is true for exactly one of them, and false when the
// user was already banned with nothing left to revoke.
//
// subID is the live subscription the admin was shown (0: none): if the user
// has another live one now (bought since), nothing is done and the error is
// wgbot.ErrConfirmStale.
func (s *Store) Ban(ctx context.Context, userID, subID int64) (changed bool, changes []wgbot.Change, err error) {
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		banned, err := lockConfirmed(ctx, tx, userID, subID)
		if err != nil {
			return err
		}
		// Read after the lock: a second ban waits for the first and sees
		// it, so it records nothing.
		trail, err := beginAudit(ctx, tx, userID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET banned = true WHERE id = $1`, userID); err != nil {
			return err
		}
		changes, err = s.revokeTx(ctx, tx, userID)
		if errors.Is(err, wgbot.ErrNoSubscription) {
			err = nil
		}
		changed = !banned || len(changes) > 0
		if err != nil || !changed {
			return err
		}
		return trail.done(ctx, tx)
	})
	if err != nil {
		return false, nil, fmt.Errorf("ban user %d: %w", userID, err)
	}
	return changed, changes, nil
}

// RevokeSubscription is Revoke of the live subscription subID the admin
// confirmed: if the user has another live one now (bought since the
// question), nothing is revoked and the error is wgbot.ErrConfirmStale.
func (s *Store) RevokeSubscription(ctx context.Context, userID, subID int64) ([]wgbot.Change, error) {
	return s.revoke(ctx, userID, func(tx pgx.Tx) error {
		_, err := lockConfirmed(ctx, tx, userID, subID)
		return err
	})
}

// lockConfirmed locks the user's row (whether they are banned is returned)
// and checks that their live subscription, if any, is subID: a confirmation
// asked about one subscription never ends a later one.
func lockConfirmed(ctx context.Context, tx pgx.Tx, userID, subID int64) (banned bool, err error) {
	err = tx.QueryRow(ctx, `SELECT banned FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&banned)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, wgbot.ErrUserNotFound
	}
	if err != nil {
		return false, err
	}
	var live int64
	err = tx.QueryRow(ctx, `SELECT id FROM subscriptions WHERE user_id = $1 AND status = 'active'`, userID).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return banned, nil
	}
	if err != nil {
		return banned, err
	}
	if live != subID {
		return banned, fmt.Errorf("live subscription %d, confirmed %d: %w", live, subID, wgbot.ErrConfirmStale)
	}
	return banned, nil
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
	return bumpRevisions(ctx, tx, servers)
}

// ExpireDue ends every active subscription whose time is up and disables
// its peers (addresses kept for a renewal). Safe to run from several
// processes at once: SKIP LOCKED hands each row to exactly one of them.
func (s *Store) ExpireDue(ctx context.Context, now time.Time, limit int) ([]wgbot.Expired, []wgbot.Change, error) {
	var expired []wgbot.Expired
	var changes []wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE subscriptions s SET status = 'expired', updated_at = $1
			FROM (SELECT id FROM subscriptions WHERE status = 'active' AND expires_at <= $1
			      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
			WHERE s.id = due.id
			RETURNING s.id, COALESCE(s.user_id, 0), COALESCE((SELECT telegram_id FROM users WHERE id = s.user_id), 0),
				COALESCE((SELECT language FROM users WHERE id = s.user_id), ''), s.expires_at`, now, limit)
		if err != nil {
			return err
		}
		expired, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (wgbot.Expired, error) {
			var e wgbot.Expired
			return e, r.Scan(&e.SubscriptionID, &e.UserID, &e.TelegramID, &e.Language, &e.ExpiresAt)
		})
		if err != nil || len(expired) == 0 {
			return err
		}
		ids := make([]int64, len(expired))
		for i, e := range expired {
			ids[i] = e.SubscriptionID
			if e.UserID == 0 {
				continue // an imported device nobody claimed yet: no one to tell
			}
			if err := s.insertJob(ctx, tx, jobargs.SubscriptionExpired{SubscriptionID: e.SubscriptionID, ExpiresAt: e.ExpiresAt.UTC()}, nil); err != nil {
				return err
			}
		}
		// Devices the quota switched off are now off for the expiry: the
		// renewal grace (and the purge after it) counts from now.
		rows, err = tx.Query(ctx, `WITH disabled AS (UPDATE peers SET status = 'disabled', disabled_at = $2, disabled_reason = NULL
			WHERE subscription_id = ANY($1) AND (status = 'active' OR (status = 'disabled' AND disabled_reason = 'quota')) RETURNING server_id)
			SELECT DISTINCT server_id FROM disabled`, ids, now)
		if err != nil {
			return err
		}
		servers, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		changes, err = bumpRevisions(ctx, tx, servers)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("expire subscriptions: %w", err)
	}
	return expired, changes, nil
}
