package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
	"wgbot/jobs/jobargs"
)

const orderColumns = `id, user_id, plan, days, devices, provider, amount, currency, status, provider_ref,
	checkout_url, checkout_tries, created_at, expires_at, discount, COALESCE(redemption_id, 0), gift, traffic, topup, save_card`

func scanOrder(row pgx.Row) (wgbot.Order, error) {
	var o wgbot.Order
	err := row.Scan(&o.ID, &o.UserID, &o.Plan, &o.Days, &o.Devices, &o.Provider, &o.Amount, &o.Currency, &o.Status, &o.ProviderRef,
		&o.CheckoutURL, &o.CheckoutTries, &o.CreatedAt, &o.ExpiresAt, &o.Discount, &o.RedemptionID, &o.Gift, &o.Traffic, &o.TopUp, &o.SaveCard)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, wgbot.ErrOrderNotFound
	}
	return o, err
}

// OpenOrders bounds a user's pending orders.
type OpenOrders struct {
	ReuseAfter time.Time // an open order created after this, for the same plan, provider and price, is reused
	Max        int       // pending orders kept per user; the oldest beyond are canceled
}

// OpenOrder returns the user's open order for the same plan, provider and
// price if a fresh one exists. The price is o.Amount less the discount the
// user redeemed and has not paid with yet, when it applies to the plan and
// currency (wgbot.Discount.Price), read under the same user lock, so the
// order and the provider's checkout or invoice carry the discounted amount (reused: true), else records a new pending
// order and cancels the user's oldest pending orders beyond lim.Max, each
// marked replaced by the new one (not a failed payment, for Stats). A
// canceled order's payment is still credited if it arrives; only a new
// checkout for it is refused (ClaimCheckout). The user's row lock
// serializes presses arriving at once, in one process or several; it is
// FOR NO KEY UPDATE, which does not conflict with the FOR KEY SHARE that
// every insert referencing the user takes, so a press never holds up a
// payment being credited or a device being issued for that user.
func (s *Store) OpenOrder(ctx context.Context, o wgbot.Order, lim OpenOrders, now time.Time) (wgbot.Order, bool, error) {
	var out wgbot.Order
	var reused bool
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE`, o.UserID).Scan(&id); errors.Is(err, pgx.ErrNoRows) {
			return wgbot.ErrUserNotFound
		} else if err != nil {
			return err
		}
		d, err := pendingDiscount(ctx, tx, o.UserID)
		if err != nil {
			return err
		}
		if d != nil && d.Applies(o.Plan, o.Currency) {
			price := d.Price(o.Amount)
			o.Discount, o.Amount, o.RedemptionID = o.Amount-price, price, d.RedemptionID
		}
		var redemption *int64
		if o.RedemptionID != 0 {
			redemption = &o.RedemptionID
		}
		out, err = scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders
			WHERE user_id = $1 AND status = 'pending' AND plan = $2 AND days = $3 AND devices = $4 AND provider = $5
				AND amount = $6 AND currency = $7 AND created_at > $8 AND expires_at > $9
				AND redemption_id IS NOT DISTINCT FROM $10 AND gift = $11 AND traffic = $12 AND topup = $13 AND save_card = $14
			ORDER BY created_at DESC LIMIT 1`,
			o.UserID, o.Plan, o.Days, o.Devices, o.Provider, o.Amount, o.Currency, lim.ReuseAfter, now, redemption, o.Gift, o.Traffic, o.TopUp, o.SaveCard))
		if err == nil {
			reused = true
			return nil
		}
		if !errors.Is(err, wgbot.ErrOrderNotFound) {
			return err
		}
		out, err = scanOrder(tx.QueryRow(ctx, `INSERT INTO orders (user_id, plan, days, devices, provider, amount, currency, status, created_at, expires_at,
				discount, redemption_id, gift, traffic, topup, save_card)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $11, $12, $13, $14, $15) RETURNING `+orderColumns,
			o.UserID, o.Plan, o.Days, o.Devices, o.Provider, o.Amount, o.Currency, now, o.ExpiresAt, o.Discount, redemption, o.Gift, o.Traffic, o.TopUp, o.SaveCard))
		if err != nil {
			return err
		}
		// One open order at a time carries a discount: the one made last.
		_, err = tx.Exec(ctx, `UPDATE orders SET status = 'canceled', replaced_by = $3
			WHERE user_id = $1 AND status = 'pending' AND id <> $3 AND (
				id IN (SELECT id FROM orders WHERE user_id = $1 AND status = 'pending' AND id <> $3
					ORDER BY created_at DESC, id DESC OFFSET $2)
				OR ($4::bigint IS NOT NULL AND redemption_id = $4))`,
			o.UserID, max(lim.Max, 1)-1, out.ID, redemption)
		return err
	})
	if err != nil {
		return out, false, fmt.Errorf("open order for user %d: %w", o.UserID, err)
	}
	return out, reused, nil
}

// ClaimCheckout counts an attempt to create the order's checkout and leases
// the creation to the caller for lease; claimed is false when the checkout
// exists (its URL is in the order) or another caller holds the lease. An
// order that is no longer pending (paid, canceled, refunded) gets no
// checkout: a conflict, wgbot.ErrOrderClosed. The lease is on the
// database's clock, like the delivery leases, so processes whose clocks
// differ still exclude each other. No lock is held across the provider's
// call.
func (s *Store) ClaimCheckout(ctx context.Context, id int64, lease time.Duration) (wgbot.Order, bool, error) {
	o, err := scanOrder(s.pool.QueryRow(ctx, `UPDATE orders SET checkout_tries = checkout_tries + 1,
			checkout_claimed_until = now() + make_interval(secs => $2)
		WHERE id = $1 AND status = 'pending' AND checkout_url = '' AND (checkout_claimed_until IS NULL OR checkout_claimed_until <= now())
		RETURNING `+orderColumns, id, lease.Seconds()))
	if err == nil {
		return o, true, nil
	}
	if !errors.Is(err, wgbot.ErrOrderNotFound) {
		return o, false, fmt.Errorf("claim checkout of order %d: %w", id, err)
	}
	o, err = s.Order(ctx, id)
	if err != nil {
		return o, false, fmt.Errorf("claim checkout of order %d: %w", id, err)
	}
	if o.Status != wgbot.OrderPending {
		return o, false, wgbot.Errorf(wgbot.EConflict, wgbot.ErrOrderClosed.Reason, "order %d is %s: no checkout", o.ID, o.Status)
	}
	return o, false, nil
}

// SetCheckout records the order's checkout (url empty: the attempt failed)
// and ends the caller's lease.
func (s *Store) SetCheckout(ctx context.Context, id int64, url string) error {
	_, err := s.pool.Exec(ctx, `UPDATE orders SET checkout_url = $2, checkout_claimed_until = NULL WHERE id = $1`, id, url)
	if err != nil {
		return fmt.Errorf("record checkout of order %d: %w", id, err)
	}
	return nil
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

// CancelOrder closes a pending order (the provider reported it canceled)
// and queues the notice that tells its user, in one transaction. A paid
// order stays paid; an order already closed is told about no more.
//
// A saved card's renewal order gets no checkout notice: nobody opened a
// checkout, and the charge's own notice (FailRenewalCharge) says what
// happened to it.
func (s *Store) CancelOrder(ctx context.Context, id int64) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var renewal bool
		err := tx.QueryRow(ctx, `UPDATE orders SET status = 'canceled' WHERE id = $1 AND status = 'pending'
			RETURNING EXISTS (SELECT 1 FROM autorenew_charges WHERE order_id = $1)`, id).Scan(&renewal)
		if errors.Is(err, pgx.ErrNoRows) || renewal {
			return nil
		}
		if err != nil {
			return err
		}
		return s.insertJob(ctx, tx, jobargs.CheckoutCanceled{OrderID: id}, nil)
	})
}

// ExpireOrders closes the pending orders whose checkout lapsed by now
// (providers such as Crypto Pay report no expiry) and queues the notice
// that tells each user, in one transaction, a bounded batch at a time. A
// payment arriving later is still credited.
func (s *Store) ExpireOrders(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE orders SET status = 'canceled' WHERE id IN (
			SELECT id FROM orders WHERE status = 'pending' AND expires_at <= $1 ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
			RETURNING id`, now)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := s.insertJob(ctx, tx, jobargs.CheckoutCanceled{OrderID: id}, nil); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire orders: %w", err)
	}
	return n, nil
}

// OrderNotice loads an order and its user, for a notice about it.
func (s *Store) OrderNotice(ctx context.Context, id int64) (wgbot.User, wgbot.Order, error) {
	o, err := s.Order(ctx, id)
	if err != nil {
		return wgbot.User{}, o, err
	}
	u, err := s.UserByID(ctx, o.UserID)
	return u, o, err
}
