package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Jobs are inserted in the same transaction as the business change they
// follow (an outbox): if the change commits, its notification will be sent;
// if it rolls back, nothing is. Their workers live in package jobs.

// PaymentCreditedArgs tells the user about a credited payment.
type PaymentCreditedArgs struct {
	PaymentID int64 `json:"payment_id"`
}

func (PaymentCreditedArgs) Kind() string { return "payment_credited" }

func (PaymentCreditedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 20}
}

// SubscriptionExpiredArgs tells the user their access ended.
type SubscriptionExpiredArgs struct {
	SubscriptionID int64     `json:"subscription_id"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func (SubscriptionExpiredArgs) Kind() string { return "subscription_expired" }

func (SubscriptionExpiredArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// ReminderArgs reminds the user DaysBefore days before ExpiresAt. A
// renewal may move the expiry after the job was queued, so the worker sends
// only if the subscription still ends at ExpiresAt.
type ReminderArgs struct {
	SubscriptionID int64     `json:"subscription_id"`
	ExpiresAt      time.Time `json:"expires_at"`
	DaysBefore     int       `json:"days_before"`
}

func (ReminderArgs) Kind() string { return "expiry_reminder" }

func (ReminderArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// UseJobs makes the store insert follow-up jobs with client, and remind
// users reminderDays before expiry. Call it before the store is used; a
// store without jobs (tests, dry runs) inserts none.
func (s *Store) UseJobs(client *river.Client[pgx.Tx], reminderDays []int) {
	s.jobs = client
	s.reminderDays = reminderDays
}

func (s *Store) insertJob(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if s.jobs == nil {
		return nil
	}
	_, err := s.jobs.InsertTx(ctx, tx, args, opts)
	return err
}

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
				WHERE status = 'active' AND expires_at > $1 AND expires_at <= $1 + make_interval(days => $2)
				  AND expires_at - make_interval(days => $2) > starts_at
				ON CONFLICT DO NOTHING
				RETURNING subscription_id, expires_at`, now, days)
			if err != nil {
				return err
			}
			due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReminderArgs, error) {
				a := ReminderArgs{DaysBefore: days}
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
