package postgres

import (
	"context"
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
// renewal moves the expiry, so the worker sends only if the subscription
// still ends at ExpiresAt: each reminder goes once per subscription period.
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

// scheduleReminders queues this period's reminders; those already due
// (a 3-day trial's "3 days left") are skipped.
func (s *Store) scheduleReminders(ctx context.Context, tx pgx.Tx, subID int64, expiresAt, now time.Time) error {
	for _, days := range s.reminderDays {
		at := expiresAt.AddDate(0, 0, -days)
		if !at.After(now) {
			continue
		}
		args := ReminderArgs{SubscriptionID: subID, ExpiresAt: expiresAt.UTC(), DaysBefore: days}
		if err := s.insertJob(ctx, tx, args, &river.InsertOpts{ScheduledAt: at, UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}); err != nil {
			return err
		}
	}
	return nil
}
