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

// Autorenewal is a saved card a user agreed to have charged for renewals.
type Autorenewal struct {
	UserID   int64
	Provider string
	MethodID string
	Plan     string
}

// RenewalCharge is one period's charge: claimed once, finished once.
type RenewalCharge struct {
	UserID    int64
	PeriodEnd time.Time
	OrderID   int64
	PaymentID string
	Status    string // pending, succeeded or failed
	Reason    string
	CreatedAt time.Time // when the period was first claimed
}

// SaveAutorenewal keeps (or replaces) the user's saved card; a new card
// after a Cancel turns renewals back on, as the user agreed again.
func (s *Store) SaveAutorenewal(ctx context.Context, a Autorenewal) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO autorenewals (user_id, provider, method_id, plan) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET provider = $2, method_id = $3, plan = $4, created_at = now(), canceled_at = NULL`,
		a.UserID, a.Provider, a.MethodID, a.Plan)
	return err
}

// CancelAutorenewal stops renewals; it reports whether they were on.
func (s *Store) CancelAutorenewal(ctx context.Context, userID int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE autorenewals SET canceled_at = now() WHERE user_id = $1 AND canceled_at IS NULL`, userID)
	return tag.RowsAffected() > 0, err
}

// ActiveAutorenewal is the user's saved card, if renewals are on.
func (s *Store) ActiveAutorenewal(ctx context.Context, userID int64) (Autorenewal, bool, error) {
	a := Autorenewal{UserID: userID}
	err := s.pool.QueryRow(ctx, `SELECT provider, method_id, plan FROM autorenewals WHERE user_id = $1 AND canceled_at IS NULL`,
		userID).Scan(&a.Provider, &a.MethodID, &a.Plan)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

// ClaimRenewalCharge records the charge of the user's period ending at
// periodEnd with orderID, unless one is recorded already: then that one is
// returned as it stands, and its order, payment and status win.
func (s *Store) ClaimRenewalCharge(ctx context.Context, userID int64, periodEnd time.Time, orderID int64) (RenewalCharge, error) {
	c, err := s.claimRenewalCharge(ctx, userID, periodEnd, orderID)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another caller inserted the row after this statement's snapshot
		// was taken: ON CONFLICT waited for it, the SELECT could not see
		// it. The next statement does.
		c, err = s.claimRenewalCharge(ctx, userID, periodEnd, orderID)
	}
	return c, err
}

func (s *Store) claimRenewalCharge(ctx context.Context, userID int64, periodEnd time.Time, orderID int64) (RenewalCharge, error) {
	c := RenewalCharge{UserID: userID}
	var paymentID, reason *string
	err := s.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO autorenew_charges (user_id, period_end, order_id) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, period_end) DO NOTHING
			RETURNING period_end, order_id, payment_id, status, reason, created_at)
		SELECT * FROM ins
		UNION ALL
		SELECT period_end, order_id, payment_id, status, reason, created_at FROM autorenew_charges WHERE user_id = $1 AND period_end = $2
		LIMIT 1`, userID, periodEnd, orderID).Scan(&c.PeriodEnd, &c.OrderID, &paymentID, &c.Status, &reason, &c.CreatedAt)
	if paymentID != nil {
		c.PaymentID = *paymentID
	}
	if reason != nil {
		c.Reason = *reason
	}
	return c, err
}

// FinishRenewalCharge records a pending charge's outcome once; it reports
// whether this call was the one that did.
func (s *Store) FinishRenewalCharge(ctx context.Context, c RenewalCharge) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE autorenew_charges SET payment_id = $3, status = $4, reason = NULLIF($5, '')
		WHERE user_id = $1 AND period_end = $2 AND status = 'pending'`, c.UserID, c.PeriodEnd, c.PaymentID, c.Status, c.Reason)
	return tag.RowsAffected() > 0, err
}

// NoteRenewalPending records the provider's payment of a charge it left
// pending, so that when the charge fails later it is known to have been
// pending (the bank may have held the amount) and can be looked up by id.
func (s *Store) NoteRenewalPending(ctx context.Context, c RenewalCharge) error {
	_, err := s.pool.Exec(ctx, `UPDATE autorenew_charges SET payment_id = $3
		WHERE user_id = $1 AND period_end = $2 AND status = 'pending'`, c.UserID, c.PeriodEnd, c.PaymentID)
	return err
}

// FailRenewalCharge records a pending charge failed, once, in one
// transaction with what follows from it: its order is canceled (with no
// checkout notice: the charge's own one says what happened), a card
// refused for good is not charged again, and the notice that tells the
// user is queued (I9). It reports whether this call recorded it.
func (s *Store) FailRenewalCharge(ctx context.Context, c RenewalCharge) (bool, error) {
	first := false
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var seenPaymentID *string
		err := tx.QueryRow(ctx, `SELECT payment_id FROM autorenew_charges
			WHERE user_id = $1 AND period_end = $2 AND status = 'pending' FOR UPDATE`, c.UserID, c.PeriodEnd).Scan(&seenPaymentID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // finished before
		}
		if err != nil {
			return err
		}
		outcome := wgbot.ClassifyRenewalFailure(c.Reason, seenPaymentID != nil)
		paymentID := c.PaymentID
		if paymentID == "" && seenPaymentID != nil {
			paymentID = *seenPaymentID
		}
		if _, err := tx.Exec(ctx, `UPDATE autorenew_charges SET payment_id = NULLIF($3, ''), status = 'failed', reason = NULLIF($4, '')
			WHERE user_id = $1 AND period_end = $2`, c.UserID, c.PeriodEnd, paymentID, c.Reason); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE orders SET status = 'canceled' WHERE id = $1 AND status = 'pending'`, c.OrderID); err != nil {
			return err
		}
		if wgbot.PermanentRenewalFailure(outcome) {
			if _, err := tx.Exec(ctx, `UPDATE autorenewals SET canceled_at = now() WHERE user_id = $1 AND canceled_at IS NULL`, c.UserID); err != nil {
				return err
			}
		}
		first = true
		return s.insertJob(ctx, tx, jobargs.RenewalFailed{OrderID: c.OrderID, Outcome: string(outcome), PeriodEnd: c.PeriodEnd}, nil)
	})
	if err != nil {
		return false, fmt.Errorf("fail renewal charge of user %d: %w", c.UserID, err)
	}
	return first, nil
}

// DueAutorenewals lists (a bounded batch of) users with renewals on whose
// active subscription ends by `by` and whose period is not settled yet.
func (s *Store) DueAutorenewals(ctx context.Context, provider string, by time.Time) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.user_id FROM autorenewals a
		JOIN subscriptions s ON s.user_id = a.user_id AND s.status = 'active'
		WHERE a.provider = $1 AND a.canceled_at IS NULL AND s.expires_at <= $2
		  AND NOT EXISTS (SELECT 1 FROM autorenew_charges c WHERE c.user_id = a.user_id
		                  AND c.period_end = s.expires_at AND c.status <> 'pending')
		ORDER BY s.expires_at LIMIT 500`, provider, by)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// SetAutorenewConsent records the user's consent to renewals from the
// card they pay with next; withdrawing it also stops the saved card's
// renewals, in one transaction.
func (s *Store) SetAutorenewConsent(ctx context.Context, userID int64, on bool) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET autorenew_consent = $2 WHERE id = $1`, userID, on); err != nil {
			return err
		}
		if on {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE autorenewals SET canceled_at = now() WHERE user_id = $1 AND canceled_at IS NULL`, userID)
		return err
	})
}

// SetCheckoutConsent records the user's choice on a checkout screen,
// touching no saved card.
func (s *Store) SetCheckoutConsent(ctx context.Context, userID int64, on bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET autorenew_consent = $2 WHERE id = $1`, userID, on)
	if err == nil && tag.RowsAffected() == 0 {
		err = wgbot.ErrUserNotFound
	}
	return err
}

// AutorenewConsent says whether the user agreed to renewals from a card.
func (s *Store) AutorenewConsent(ctx context.Context, userID int64) (bool, error) {
	var on bool
	err := s.pool.QueryRow(ctx, `SELECT autorenew_consent FROM users WHERE id = $1`, userID).Scan(&on)
	return on, err
}
