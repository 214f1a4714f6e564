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

// PaymentNotice is what the user is told about one credited payment.
type PaymentNotice struct {
	User         wgbot.User
	Subscription wgbot.Subscription
	Peer         *SealedPeer // the device the payment issued, if any
	Refunded     bool
	Kind         string // wgbot.LedgerPayment, LedgerReferral or LedgerPromo
	Key          string // the provider's payment id: for a bonus, its side and invited user
	Days         int
	TopUp        int64 // bytes a top-up added to the month's allowance
}

// PaymentNotice loads a credited payment's user, subscription and device.
func (s *Store) PaymentNotice(ctx context.Context, paymentID int64) (PaymentNotice, error) {
	var n PaymentNotice
	var userID int64
	var peerID *int64
	var status string
	err := s.pool.QueryRow(ctx, `SELECT user_id, peer_id, status, kind, provider_payment_id, days,
			coalesce((SELECT bytes FROM traffic_topups WHERE payment_id = payments.id), 0)
		FROM payments WHERE id = $1`,
		paymentID).Scan(&userID, &peerID, &status, &n.Kind, &n.Key, &n.Days, &n.TopUp)
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

// Refund is a provider's refund of a payment.
type Refund struct {
	Provider          string
	ProviderPaymentID string
	// Partial: only part of the money went back. A credited payment keeps
	// its period (and is flagged with Flag, if given); it is never reversed.
	Partial bool
	// Flag, if given, flags the payment for the operator (a partial refund,
	// or money that must still be returned by hand).
	Flag string
	// Uncredited is the payment as the provider reports it. If it was never
	// credited, it is recorded as settled (refunded, no days), so that a
	// confirmation arriving later is a duplicate, not a credit. Nil: a
	// payment never credited is ErrPaymentNotFound.
	Uncredited *Settlement
}

// Settlement is a payment recorded without a credit.
type Settlement struct {
	OrderID  int64
	UserID   int64
	Amount   int64
	Currency string
	Flag     string // why an operator should look
}

// RefundPayment reverses a credited payment once: the payment is marked
// refunded and the user's subscription loses the days it bought; if that
// leaves no time, the subscription and its peers are revoked. A payment
// never credited is recorded as settled (see Refund.Uncredited), in the
// same transaction that looked for it: a credit racing with it either
// commits first and is reversed here, or finds the settled row and is a
// duplicate (I3, I10).
func (s *Store) RefundPayment(ctx context.Context, r Refund, now time.Time) (wgbot.RefundResult, error) {
	var res wgbot.RefundResult
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		trail, err := beginPaymentAudit(ctx, tx, r)
		if err != nil {
			return err
		}
		if res, err = s.refundTx(ctx, tx, r, now); err != nil || res.Duplicate {
			return err
		}
		return trail.done(ctx, tx)
	})
	if err != nil {
		return res, fmt.Errorf("refund %s payment %s: %w", r.Provider, r.ProviderPaymentID, err)
	}
	return res, nil
}

// refundTx is RefundPayment's one step inside its transaction.
func (s *Store) refundTx(ctx context.Context, tx pgx.Tx, r Refund, now time.Time) (wgbot.RefundResult, error) {
	var res wgbot.RefundResult
	err := func() error {
		status, err := paymentStatusTx(ctx, tx, r)
		if err != nil {
			return err
		}
		if status == "" {
			if r.Uncredited == nil {
				return wgbot.ErrPaymentNotFound
			}
			if res.Settled, err = settleTx(ctx, tx, r, now); err != nil || res.Settled {
				res.UserID = r.Uncredited.UserID
				return err
			}
			// A credit committed meanwhile; now it is visible.
			if status, err = paymentStatusTx(ctx, tx, r); err != nil {
				return err
			}
		}
		switch {
		case status == "refunded":
			res.Duplicate = true
			return nil
		case status != "credited":
			return fmt.Errorf("payment is %q", status)
		case r.Partial:
			res.Kept = true
			return tx.QueryRow(ctx, `UPDATE payments SET flagged = CASE WHEN flagged = '' THEN $3 ELSE flagged END
				WHERE provider = $1 AND provider_payment_id = $2 RETURNING user_id`,
				r.Provider, r.ProviderPaymentID, r.Flag).Scan(&res.UserID)
		}
		// The payer and everyone its bonuses went to, locked in the lock
		// order (lockorder.go) before any time is taken back or any
		// address freed.
		rows, err := tx.Query(ctx, `SELECT b.user_id FROM payments b JOIN payments p ON b.source_payment_id = p.id
			WHERE p.provider = $1 AND p.provider_payment_id = $2 AND b.status = 'credited'
			UNION SELECT user_id FROM payments WHERE provider = $1 AND provider_payment_id = $2`, r.Provider, r.ProviderPaymentID)
		if err != nil {
			return err
		}
		users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if err := lockUsersTx(ctx, tx, users...); err != nil {
			return err
		}
		var paymentID int64
		var orderID *int64
		var creditedUntil *time.Time
		if err := tx.QueryRow(ctx, `UPDATE payments SET status = 'refunded', refunded_at = $3,
				flagged = CASE WHEN flagged = '' THEN $4 ELSE flagged END
			WHERE provider = $1 AND provider_payment_id = $2
			RETURNING id, user_id, days, order_id, credited_until`, r.Provider, r.ProviderPaymentID, now, r.Flag).Scan(&paymentID, &res.UserID, &res.Days, &orderID, &creditedUntil); err != nil {
			return err
		}
		if orderID != nil {
			if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'refunded' WHERE id = $1`, *orderID); err != nil {
				return err
			}
		}
		// A refunded top-up's traffic is no longer allowed; the next quota
		// check acts on what is left.
		if _, err := tx.Exec(ctx, `DELETE FROM traffic_topups WHERE payment_id = $1`, paymentID); err != nil {
			return err
		}
		// A gift not yet redeemed can no longer be.
		if _, err := tx.Exec(ctx, `UPDATE gifts SET status = 'refunded' WHERE payment_id = $1 AND status = 'open'`, paymentID); err != nil {
			return err
		}
		taken, err := s.takeBackTx(ctx, tx, res.UserID, res.Days, creditedUntil, now)
		if err != nil {
			return err
		}
		res.Days, res.Subscription, res.Revoked, res.Changes = taken.days, taken.sub, taken.revoked, taken.changes
		// A refunded payment earns no referral bonus: each bonus it earned
		// is reversed too, losing what of it is unused.
		return s.takeBackBonusesTx(ctx, tx, paymentID, now, &res)
	}()
	return res, err
}

// takenBack is what reversing one credit took from its user.
type takenBack struct {
	days    int // rounded up; 0 when its period was used up
	sub     wgbot.Subscription
	revoked bool // it took all remaining time: access ended
	changes []wgbot.Change
}

// takeBackTx takes back the unused part of a credit of days whose period
// ended at creditedUntil: time already used, or bought by a later credit
// after this one's period ran out, stays. If that leaves no time, the
// subscription and its devices are revoked.
func (s *Store) takeBackTx(ctx context.Context, tx pgx.Tx, userID int64, days int, creditedUntil *time.Time, now time.Time) (takenBack, error) {
	var t takenBack
	unused := time.Duration(days) * 24 * time.Hour
	if creditedUntil != nil {
		unused = min(unused, max(0, creditedUntil.Sub(now)))
	}
	t.days = int((unused + 24*time.Hour - 1) / (24 * time.Hour))
	sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE user_id = $1 AND status = 'active' FOR UPDATE`, userID))
	if errors.Is(err, wgbot.ErrNoSubscription) || unused == 0 {
		return t, nil // already expired, revoked or used up: nothing left to take back
	}
	if err != nil {
		return t, err
	}
	sub.ExpiresAt = sub.ExpiresAt.Add(-unused)
	t.sub = sub
	if sub.ExpiresAt.After(now) {
		_, err = tx.Exec(ctx, `UPDATE subscriptions SET expires_at = $2, updated_at = $3 WHERE id = $1`, sub.ID, sub.ExpiresAt, now)
		return t, err
	}
	t.revoked = true
	t.changes, err = s.revokeTx(ctx, tx, userID)
	t.sub.Status = wgbot.SubscriptionRevoked
	return t, err
}

// takeBackBonusesTx reverses the referral bonuses payment paymentID
// earned, each once, adding what was taken to res.
func (s *Store) takeBackBonusesTx(ctx context.Context, tx pgx.Tx, paymentID int64, now time.Time, res *wgbot.RefundResult) error {
	rows, err := tx.Query(ctx, `UPDATE payments SET status = 'refunded', refunded_at = $2
		WHERE source_payment_id = $1 AND status = 'credited' RETURNING id, user_id, days, credited_until`, paymentID, now)
	if err != nil {
		return err
	}
	type bonus struct {
		id     int64
		userID int64
		days   int
		until  *time.Time
	}
	bonuses, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (bonus, error) {
		var b bonus
		return b, r.Scan(&b.id, &b.userID, &b.days, &b.until)
	})
	if err != nil {
		return err
	}
	for _, b := range bonuses {
		taken, err := s.takeBackTx(ctx, tx, b.userID, b.days, b.until, now)
		if err != nil {
			return err
		}
		res.BonusDays += taken.days
		res.Changes = append(res.Changes, taken.changes...)
		if b.userID != res.UserID && taken.days > 0 {
			// The referrer learns why their days went down, in the
			// refund's transaction (I9); the payer hears of the refund.
			if err := s.insertJob(ctx, tx, jobargs.BonusTakenBack{LedgerID: b.id, Days: taken.days}, nil); err != nil {
				return err
			}
		}
		if b.userID == res.UserID && taken.sub.ID != 0 {
			// The payer's own bonus came after the paid days: the
			// subscription as it ends now.
			res.Subscription, res.Revoked = taken.sub, res.Revoked || taken.revoked
		}
	}
	return nil
}

// paymentStatusTx locks the payment's row and returns its status, "" if
// there is none.
func paymentStatusTx(ctx context.Context, tx pgx.Tx, r Refund) (string, error) {
	var status string
	err := tx.QueryRow(ctx, `SELECT status FROM payments WHERE provider = $1 AND provider_payment_id = $2 FOR UPDATE`,
		r.Provider, r.ProviderPaymentID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return status, err
}

// settleTx records a payment that was refunded before it was credited;
// false if a row for it exists after all (a credit committed meanwhile).
func settleTx(ctx context.Context, tx pgx.Tx, r Refund, now time.Time) (bool, error) {
	u := r.Uncredited
	tag, err := tx.Exec(ctx, `INSERT INTO payments (provider, provider_payment_id, order_id, user_id, amount, currency, status, days, flagged, refunded_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'refunded', 0, $7, $8)
		ON CONFLICT (provider, provider_payment_id) DO NOTHING`,
		r.Provider, r.ProviderPaymentID, u.OrderID, u.UserID, u.Amount, u.Currency, u.Flag, now)
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	_, err = tx.Exec(ctx, `UPDATE orders SET status = 'refunded' WHERE id = $1 AND status IN ('pending', 'canceled')`, u.OrderID)
	return err == nil, err
}

// PaymentUser returns the user a credited payment belongs to, for admin
// refunds by charge id.
func (s *Store) PaymentUser(ctx context.Context, provider, providerPaymentID string) (wgbot.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id =
		(SELECT user_id FROM payments WHERE provider = $1 AND provider_payment_id = $2)`, provider, providerPaymentID))
}

// CreditPayment records the payment and extends (or creates) the user's
// subscription in the same transaction (I3): a payment is either credited
// with its time or not recorded at all. A repeated delivery finds the row
// and changes nothing. Paying while live extends from the current expiry and
// keeps the same peers and addresses; paying after expiry re-enables the
// user's disabled peers with their addresses.
//
// The payment also settles what rides on it, in the same transaction: the
// promo discount its order was priced with is used (the user's other open
// orders priced with it are cancelled), and the referral bonuses of the
// user's first payment are given, each under its own ledger key (I10).
// referrerPeer is the device the referrer's bonus issues if they have no
// live subscription.
func (s *Store) CreditPayment(ctx context.Context, c wgbot.Credit, serverID int64, peer, referrerPeer NewPeer, now time.Time) (wgbot.CreditResult, error) {
	var res wgbot.CreditResult
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		res = wgbot.CreditResult{}
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
			// A gift's link is shown again to a buyer whose payment
			// notice came twice: the one made the first time.
			if orderID == nil {
				return nil
			}
			res.Gift, err = giftOfOrderTx(ctx, tx, c.OrderID)
			return err
		}
		if err != nil {
			return err
		}
		if orderID != nil {
			var gift bool
			if err := tx.QueryRow(ctx, `SELECT gift FROM orders WHERE id = $1`, c.OrderID).Scan(&gift); err != nil {
				return err
			}
			if gift {
				if res.Gift, err = makeGiftTx(ctx, tx, c, res.PaymentID, now); err != nil {
					return err
				}
				// The buyer's link goes through the outbox (I9): a crash
				// between this commit and its send still delivers it.
				return s.insertJob(ctx, tx, jobargs.GiftReady{GiftID: res.Gift.ID}, nil)
			}
		}
		if orderID != nil {
			// A late payment for an expired or canceled order is still
			// credited: money is never kept without giving time.
			if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'paid', paid_at = $2 WHERE id = $1 AND status <> 'paid'`, c.OrderID, now); err != nil {
				return err
			}
			if err := useDiscountTx(ctx, tx, c.OrderID, res.PaymentID); err != nil {
				return err
			}
		}
		if c.TopUp {
			return s.creditTopUpTx(ctx, tx, c, &res, now)
		}
		if c.Recurring != nil && orderID != nil {
			if err := recordStarChargeTx(ctx, tx, c, now); err != nil {
				return err
			}
		}
		// The payer and the referrer their payment may reward, locked in
		// the lock order (lockorder.go) before either gets time or a
		// device: the referrer's device must not hold the allocator's lock
		// while the payer's subscription is waited for.
		referrer, err := s.rewardedReferrerTx(ctx, tx, c.UserID)
		if err != nil {
			return err
		}
		if err := lockUsersTx(ctx, tx, c.UserID, referrer); err != nil {
			return err
		}
		if err := s.creditReferrerTx(ctx, tx, res.PaymentID, c.UserID, serverID, referrerPeer, now); err != nil {
			return err
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
		if orderID != nil {
			// The plan bought sets the monthly quota (the order's copy).
			changes, err := s.setPlanQuotaTx(ctx, tx, res.Subscription.ID, c.Traffic, now)
			if err != nil {
				return err
			}
			if len(changes) > 0 {
				res.Change = changes[len(changes)-1]
			}
		}
		if err := s.insertJob(ctx, tx, jobargs.PaymentCredited{PaymentID: res.PaymentID}, nil); err != nil {
			return err
		}
		if err := s.creditInvitedTx(ctx, tx, res.PaymentID, c.UserID, serverID, now); err != nil {
			return err
		}
		if res.Subscription, err = scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, res.Subscription.ID)); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("credit %s payment %s: %w", c.Provider, c.ProviderPaymentID, err)
	}
	return res, nil
}

func jsonOrNil(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}
