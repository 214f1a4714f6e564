package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

const orderColumns = `id, user_id, plan, days, devices, provider, amount, currency, status, provider_ref, created_at, expires_at`

func scanOrder(row pgx.Row) (wgbot.Order, error) {
	var o wgbot.Order
	err := row.Scan(&o.ID, &o.UserID, &o.Plan, &o.Days, &o.Devices, &o.Provider, &o.Amount, &o.Currency, &o.Status, &o.ProviderRef, &o.CreatedAt, &o.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, wgbot.ErrOrderNotFound
	}
	return o, err
}

// CreateOrder records a pending order at the plan's price.
func (s *Store) CreateOrder(ctx context.Context, o wgbot.Order) (wgbot.Order, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `INSERT INTO orders (user_id, plan, days, devices, provider, amount, currency, status, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) RETURNING `+orderColumns,
		o.UserID, o.Plan, o.Days, o.Devices, o.Provider, o.Amount, o.Currency, o.ExpiresAt))
	if err != nil {
		return o, fmt.Errorf("create order: %w", err)
	}
	return o, nil
}

// Order reads one order.
func (s *Store) Order(ctx context.Context, id int64) (wgbot.Order, error) {
	return scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, id))
}

// SetOrderRef stores the provider's checkout id on the order.
func (s *Store) SetOrderRef(ctx context.Context, id int64, ref string) error {
	_, err := s.pool.Exec(ctx, `UPDATE orders SET provider_ref = $2 WHERE id = $1`, id, ref)
	return err
}

// CancelOrder closes a pending order (the provider reported it canceled).
// A paid order stays paid.
func (s *Store) CancelOrder(ctx context.Context, id int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE orders SET status = 'canceled' WHERE id = $1 AND status = 'pending'`, id)
	return err
}

// Refund is a provider's refund of a credited payment.
type Refund struct {
	Provider          string
	ProviderPaymentID string
}

// RefundResult is what reversing a payment did.
type RefundResult struct {
	Duplicate    bool // already refunded; nothing changed
	UserID       int64
	Days         int // days taken back (rounded up); 0 when the period was used up
	Subscription wgbot.Subscription
	Revoked      bool // the refund took all remaining time: access ended
	Changes      []wgbot.Change
}

// RefundPayment reverses a credited payment once: the payment is marked
// refunded and the user's subscription loses the days it bought; if that
// leaves no time, the subscription and its peers are revoked.
func (s *Store) RefundPayment(ctx context.Context, r Refund, now time.Time) (RefundResult, error) {
	var res RefundResult
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		res = RefundResult{}
		var orderID *int64
		var creditedUntil *time.Time
		err := tx.QueryRow(ctx, `UPDATE payments SET status = 'refunded', refunded_at = $3
			WHERE provider = $1 AND provider_payment_id = $2 AND status = 'credited'
			RETURNING user_id, days, order_id, credited_until`, r.Provider, r.ProviderPaymentID, now).Scan(&res.UserID, &res.Days, &orderID, &creditedUntil)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT true FROM payments WHERE provider = $1 AND provider_payment_id = $2`, r.Provider, r.ProviderPaymentID).Scan(&exists); errors.Is(err, pgx.ErrNoRows) {
				return wgbot.ErrPaymentNotFound
			}
			res.Duplicate = true
			return nil
		}
		if err != nil {
			return err
		}
		if orderID != nil {
			if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'refunded' WHERE id = $1`, *orderID); err != nil {
				return err
			}
		}
		// Only the unused part of the period this payment bought is taken
		// back: time already used, or bought by a later payment after this
		// one's period ran out, stays.
		unused := time.Duration(res.Days) * 24 * time.Hour
		if creditedUntil != nil {
			unused = min(unused, max(0, creditedUntil.Sub(now)))
		}
		res.Days = int((unused + 24*time.Hour - 1) / (24 * time.Hour))
		sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
			WHERE user_id = $1 AND status = 'active' FOR UPDATE`, res.UserID))
		if errors.Is(err, wgbot.ErrNoSubscription) || unused == 0 {
			return nil // already expired, revoked or used up: nothing left to take back
		}
		if err != nil {
			return err
		}
		sub.ExpiresAt = sub.ExpiresAt.Add(-unused)
		if sub.ExpiresAt.After(now) {
			_, err = tx.Exec(ctx, `UPDATE subscriptions SET expires_at = $2, updated_at = $3 WHERE id = $1`, sub.ID, sub.ExpiresAt, now)
			res.Subscription = sub
			return err
		}
		res.Revoked = true
		res.Changes, err = s.revokeTx(ctx, tx, res.UserID)
		res.Subscription = sub
		res.Subscription.Status = wgbot.SubscriptionRevoked
		return err
	})
	if err != nil {
		return res, fmt.Errorf("refund %s payment %s: %w", r.Provider, r.ProviderPaymentID, err)
	}
	return res, nil
}

// PaymentUser returns the user a credited payment belongs to, for admin
// refunds by charge id.
func (s *Store) PaymentUser(ctx context.Context, provider, providerPaymentID string) (wgbot.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id =
		(SELECT user_id FROM payments WHERE provider = $1 AND provider_payment_id = $2)`, provider, providerPaymentID))
}
