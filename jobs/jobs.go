// Package jobs runs wgbot's background work on River, a PostgreSQL-backed
// queue: payment notifications (an outbox written in the payment's own
// transaction), expiry and its messages, reminders, and the periodic sweep.
// Periodic jobs run on one elected leader and every job row is worked once,
// so any number of `wgbot serve` processes can share one database.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"wgbot"
	"wgbot/logs"
	"wgbot/postgres"
	"wgbot/service"
)

// Config tunes the schedules.
type Config struct {
	ExpireEvery time.Duration // how often due subscriptions are expired (I7: well under a minute)
	RemindEvery time.Duration // how often due reminders are queued
	SweepEvery  time.Duration // consistency sweep
	Retention   time.Duration // expired peers are revoked, their addresses freed, this long after expiry
	MaxWorkers  int
}

// Deps are filled after the client exists: the service needs the store,
// which needs the client to insert jobs; workers only look at Deps when
// they run.
type Deps struct {
	Service  *service.Service
	Notifier service.Notifier
	Log      *slog.Logger
}

// New builds the River client with every worker and periodic job. Start
// it with Start; an insert-only process (the CLI) never starts it.
func New(pool *pgxpool.Pool, cfg Config, deps *Deps) (*river.Client[pgx.Tx], error) {
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = 15 * time.Second
	}
	if cfg.RemindEvery <= 0 {
		cfg.RemindEvery = time.Minute
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 5 * time.Minute
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 10
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &paymentWorker{deps: deps})
	river.AddWorker(workers, &expiredWorker{deps: deps})
	river.AddWorker(workers, &reminderWorker{deps: deps})
	river.AddWorker(workers, &expireDueWorker{deps: deps})
	river.AddWorker(workers, &remindDueWorker{deps: deps})
	river.AddWorker(workers, &sweepWorker{deps: deps, retention: cfg.Retention})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers}},
		Workers: workers,
		PeriodicJobs: []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(cfg.ExpireEvery),
				func() (river.JobArgs, *river.InsertOpts) { return ExpireDueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "expire_due"}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.RemindEvery),
				func() (river.JobArgs, *river.InsertOpts) { return RemindDueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "remind_due"}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.SweepEvery),
				func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "sweep"}),
		},
		Logger:     deps.Log,
		JobTimeout: time.Minute,
		// Every line a job logs carries its id and kind.
		Middleware: []rivertype.Middleware{river.WorkerMiddlewareFunc(
			func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
				ctx = logs.With(ctx, slog.Int64("job_id", job.ID), slog.String("job_kind", job.Kind))
				start := time.Now()
				err := doInner(ctx)
				deps.Log.DebugContext(ctx, "job worked", "attempt", job.Attempt, "took", time.Since(start).String(), "err", err)
				return err
			})},
	})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return client, nil
}

// ExpireDueArgs expires every subscription whose time is up.
type ExpireDueArgs struct{}

func (ExpireDueArgs) Kind() string { return "expire_due" }

func (ExpireDueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Second}, MaxAttempts: 1}
}

// RemindDueArgs queues the reminders that are due.
type RemindDueArgs struct{}

func (RemindDueArgs) Kind() string { return "remind_due" }

func (RemindDueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Second}, MaxAttempts: 1}
}

// SweepArgs runs the consistency sweep.
type SweepArgs struct{}

func (SweepArgs) Kind() string { return "sweep" }

func (SweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}, MaxAttempts: 1}
}

// deliver maps a notifier's answer to the job's: a user who blocked the bot
// is not retried (the bot marked them); anything else is retried with
// River's backoff.
func deliver(err error) error {
	if errors.Is(err, wgbot.ErrUserBlocked) {
		return river.JobCancel(err)
	}
	return err
}

type paymentWorker struct {
	river.WorkerDefaults[postgres.PaymentCreditedArgs]
	deps *Deps
}

// Work waits for WireGuard (the config must work when it arrives), then
// tells the user. A crash anywhere before the send leaves the job to be
// retried, so the user is told after a restart; River records completion,
// so they are told once.
func (w *paymentWorker) Work(ctx context.Context, job *river.Job[postgres.PaymentCreditedArgs]) error {
	n, err := w.deps.Service.PaymentNotice(ctx, job.Args.PaymentID)
	if err != nil || n == nil {
		return err
	}
	return deliver(w.deps.Notifier.PaymentCredited(ctx, n.User, n.Subscription, n.Delivery))
}

type expiredWorker struct {
	river.WorkerDefaults[postgres.SubscriptionExpiredArgs]
	deps *Deps
}

func (w *expiredWorker) Work(ctx context.Context, job *river.Job[postgres.SubscriptionExpiredArgs]) error {
	user, sub, err := w.deps.Service.SubscriptionNotice(ctx, job.Args.SubscriptionID)
	if err != nil {
		return err
	}
	// Renewed since it expired: the message would be wrong now.
	if sub.Status != wgbot.SubscriptionExpired || !sub.ExpiresAt.Equal(job.Args.ExpiresAt) || user.BlockedBot {
		return nil
	}
	return deliver(w.deps.Notifier.SubscriptionExpired(ctx, user, sub))
}

type reminderWorker struct {
	river.WorkerDefaults[postgres.ReminderArgs]
	deps *Deps
}

func (w *reminderWorker) Work(ctx context.Context, job *river.Job[postgres.ReminderArgs]) error {
	user, sub, err := w.deps.Service.SubscriptionNotice(ctx, job.Args.SubscriptionID)
	if err != nil {
		return err
	}
	// A renewal moved the expiry: this period's reminder is void; the
	// renewal scheduled the new ones.
	if sub.Status != wgbot.SubscriptionActive || !sub.ExpiresAt.Equal(job.Args.ExpiresAt) || user.BlockedBot {
		return nil
	}
	return deliver(w.deps.Notifier.ExpiryReminder(ctx, user, sub, job.Args.DaysBefore))
}

type expireDueWorker struct {
	river.WorkerDefaults[ExpireDueArgs]
	deps *Deps
}

func (w *expireDueWorker) Work(ctx context.Context, job *river.Job[ExpireDueArgs]) error {
	expired, err := w.deps.Service.ExpireDue(ctx)
	if len(expired) > 0 {
		w.deps.Log.InfoContext(ctx, "subscriptions expired", "count", len(expired))
	}
	return err
}

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	deps      *Deps
	retention time.Duration
}

// Work is the consistency sweep: subscriptions left active past their
// expiry (after downtime, say) are expired, and peers expired longer than
// the retention period free their addresses.
func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	expired, err := w.deps.Service.ExpireDue(ctx)
	if err != nil {
		return err
	}
	purged, err := w.deps.Service.PurgeExpired(ctx, w.retention)
	if len(expired) > 0 || purged > 0 {
		w.deps.Log.InfoContext(ctx, "sweep", "expired", len(expired), "purged_servers", purged)
	}
	return err
}

type remindDueWorker struct {
	river.WorkerDefaults[RemindDueArgs]
	deps *Deps
}

func (w *remindDueWorker) Work(ctx context.Context, job *river.Job[RemindDueArgs]) error {
	n, err := w.deps.Service.QueueReminders(ctx)
	if n > 0 {
		w.deps.Log.InfoContext(ctx, "reminders queued", "count", n)
	}
	return err
}
