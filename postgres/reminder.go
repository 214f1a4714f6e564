package postgres

import (
	"context"
	"fmt"
	"time"
	"wgbot/jobs/jobargs"

	"github.com/jackc/pgx/v5"
)

// QueueDueReminders queues a reminder job for every active subscription
// that is within one of the reminder offsets of its expiry and has not had
// that reminder for its current expiry. Reminders follow expires_at, so a
// renewal moves them, and the reminders table makes each one go once per
// period. A reminder that was already due when the period began (a 3-day
// trial's "3 days left") is skipped. Nothing is scheduled at issuance: the
// hot path pays nothing for reminders, and a lost job cannot exist.
func (s *Store) QueueDueReminders(ctx context.Context, now time.Time) (int, error) {
	if s.jobs == nil || len(s.reminderDays) == 0 {
		return 0, nil
	}
	queued := 0
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		queued = 0
		for _, days := range s.reminderDays {
			rows, err := tx.Query(ctx, `INSERT INTO reminders (subscription_id, expires_at, days)
				SELECT id, expires_at, $2 FROM subscriptions
				WHERE status = 'active' AND user_id IS NOT NULL AND expires_at > $1 AND expires_at <= $1 + make_interval(days => $2)
				  AND expires_at - make_interval(days => $2) > starts_at
				ON CONFLICT DO NOTHING
				RETURNING subscription_id, expires_at`, now, days)
			if err != nil {
				return err
			}
			due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jobargs.Reminder, error) {
				a := jobargs.Reminder{DaysBefore: days}
				return a, r.Scan(&a.SubscriptionID, &a.ExpiresAt)
			})
			if err != nil {
				return err
			}
			for _, a := range due {
				a.ExpiresAt = a.ExpiresAt.UTC()
				if err := s.insertJob(ctx, tx, a, nil); err != nil {
					return err
				}
			}
			queued += len(due)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue due reminders: %w", err)
	}
	return queued, nil
}
