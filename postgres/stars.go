package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// recordStarChargeTx records a Stars subscription's charge in the
// transaction that credits it: the first charge (or whichever arrives
// first: Telegram does not promise order) creates the subscription; each
// moves its renewal date on, never back, so a late redelivery of an old
// charge changes nothing.
func recordStarChargeTx(ctx context.Context, tx pgx.Tx, c wgbot.Credit, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO star_subscriptions (user_id, order_id, charge_id, renews_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (order_id) DO UPDATE SET
			renews_at = GREATEST(star_subscriptions.renews_at, EXCLUDED.renews_at),
			charge_id = CASE WHEN $6 THEN EXCLUDED.charge_id ELSE star_subscriptions.charge_id END,
			updated_at = EXCLUDED.updated_at`,
		c.UserID, c.OrderID, c.ProviderPaymentID, c.Recurring.ExpiresAt, now, c.Recurring.First)
	if err != nil {
		return fmt.Errorf("record Stars subscription of order %d: %w", c.OrderID, err)
	}
	return nil
}

const starSubscriptionColumns = `id, user_id, order_id, charge_id, renews_at, canceled_at IS NOT NULL`

func scanStarSubscription(row pgx.Row) (wgbot.StarSubscription, error) {
	var s wgbot.StarSubscription
	err := row.Scan(&s.ID, &s.UserID, &s.OrderID, &s.ChargeID, &s.RenewsAt, &s.Canceled)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, wgbot.ErrNoStarSubscription
	}
	s.RenewsAt = s.RenewsAt.UTC()
	return s, err
}

// StarSubscription returns the user's latest Stars subscription whose
// period has not ended at now.
func (s *Store) StarSubscription(ctx context.Context, userID int64, now time.Time) (wgbot.StarSubscription, error) {
	sub, err := scanStarSubscription(s.pool.QueryRow(ctx, `SELECT `+starSubscriptionColumns+` FROM star_subscriptions
		WHERE user_id = $1 AND renews_at > $2 ORDER BY renews_at DESC, id DESC LIMIT 1`, userID, now))
	if err != nil && !errors.Is(err, wgbot.ErrNoStarSubscription) {
		return sub, fmt.Errorf("read Stars subscription of user %d: %w", userID, err)
	}
	return sub, err
}

// SetStarRenewal records that renewal of the user's Stars subscription id
// was turned off (canceled) or on again, once Telegram accepted it.
func (s *Store) SetStarRenewal(ctx context.Context, userID, id int64, canceled bool, now time.Time) (wgbot.StarSubscription, error) {
	sub, err := scanStarSubscription(s.pool.QueryRow(ctx, `UPDATE star_subscriptions
		SET canceled_at = CASE WHEN $3 THEN COALESCE(canceled_at, $4) END, updated_at = $4
		WHERE id = $1 AND user_id = $2 RETURNING `+starSubscriptionColumns, id, userID, canceled, now))
	if err != nil {
		return sub, fmt.Errorf("set renewal of Stars subscription %d: %w", id, err)
	}
	return sub, nil
}

// StarSubscriptionOfCharge returns the Stars subscription whose order a
// charge was credited against, or wgbot.ErrNoStarSubscription.
func (s *Store) StarSubscriptionOfCharge(ctx context.Context, provider, providerPaymentID string) (wgbot.StarSubscription, error) {
	sub, err := scanStarSubscription(s.pool.QueryRow(ctx, `SELECT `+starSubscriptionColumns+` FROM star_subscriptions
		WHERE order_id = (SELECT order_id FROM payments WHERE provider = $1 AND provider_payment_id = $2)`, provider, providerPaymentID))
	if err != nil && !errors.Is(err, wgbot.ErrNoStarSubscription) {
		return sub, fmt.Errorf("find the Stars subscription of charge %s: %w", providerPaymentID, err)
	}
	return sub, err
}
