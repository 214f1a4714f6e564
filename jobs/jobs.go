// Package jobs runs wgbot's background work on River, a PostgreSQL-backed
// queue: payment notifications and new devices' configs (an outbox written
// in the payment's or the issuing transaction), expiry and its messages,
// reminders, and the periodic sweep.
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
	"wgbot/jobs/jobargs"
	"wgbot/logs"
	"wgbot/service"
)

// Config tunes the schedules.
type Config struct {
	ExpireEvery time.Duration // how often due subscriptions are expired (I7: well under a minute)
	RemindEvery time.Duration // how often due reminders are queued
	SweepEvery  time.Duration // consistency sweep
	RenewEvery  time.Duration // how often saved cards due are charged (with Deps.Renewer)
	Retention   time.Duration // expired peers are revoked, their addresses freed, this long after expiry
	MaxWorkers  int

	BroadcastRate float64 // broadcast messages per second, over all processes; default 25

	// ConnectionEvery is how often delivered devices are checked for a
	// first connection (default a minute).
	ConnectionEvery time.Duration
	// QuotaEvery is how often traffic is checked against quotas (default
	// 30 seconds; traffic is collected every USAGE_INTERVAL).
	QuotaEvery time.Duration
	// OutageEvery is how often the outages nodes recorded are settled
	// (default 15s; an empty indexed read when there are none).
	OutageEvery time.Duration
}

// Service is what the workers need of the service: expiring, purging and
// reminding on schedule, and the notices and deliveries the store queued.
// *service.Service implements it.
type Service interface {
	ExpireDue(ctx context.Context) ([]wgbot.Expired, error)
	PurgeExpired(ctx context.Context, retention time.Duration) (int, error)
	QueueReminders(ctx context.Context) (int, error)
	ExpireCheckouts(ctx context.Context) (int, error)
	RetireMoved(ctx context.Context) (int, error)
	SubscriptionNotice(ctx context.Context, subID int64) (wgbot.User, wgbot.Subscription, error)
	OrderNotice(ctx context.Context, orderID int64) (wgbot.User, wgbot.Order, error)
	PaymentNotice(ctx context.Context, paymentID int64) (*service.PaymentNotice, error)
	MarkDelivered(ctx context.Context, peerID int64) error
	DeliverIssued(ctx context.Context, args jobargs.DeviceIssued, n service.DeviceNotifier) error
	QueueConnectionChecks(ctx context.Context) (int, error)
	SettleOutages(ctx context.Context) (int, error)
	ConnectionTipNotice(ctx context.Context, peerID int64) (wgbot.User, wgbot.Peer, bool, error)
	EnforceQuotas(ctx context.Context) (wgbot.QuotaCheck, error)
	QuotaNotice(ctx context.Context, subID int64, month time.Time, level int) (wgbot.User, wgbot.Quota, bool, error)
}

var _ Service = (*service.Service)(nil)

// Deps are what the workers use. The worker client is built last, when
// the service and the bot exist; the store inserts jobs with the outbox
// (NewOutbox), built first.
type Deps struct {
	Service Service
	// Renewer charges the saved cards that are due (YooKassa
	// auto-renewal); nil: no renewal job.
	Renewer  Renewer
	Notifier service.Notifier
	Devices  service.DeviceNotifier // sends new devices' configs
	Log      *slog.Logger

	Broadcasts  BroadcastStore  // nil: broadcast jobs fail and are retried
	Broadcaster BroadcastSender // sends them (the bot)
}

// NewOutbox builds the insert-only River client the store inserts jobs
// with, in the transaction of the change they follow. It is never started:
// the client New builds works the jobs.
func NewOutbox(pool *pgxpool.Pool, log *slog.Logger) (*river.Client[pgx.Tx], error) {
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("job outbox: %w", err)
	}
	return client, nil
}

// New builds the River client with every worker and periodic job. Start
// it with Start; an insert-only process (the CLI) needs only NewOutbox.
func New(pool *pgxpool.Pool, cfg Config, d Deps) (*river.Client[pgx.Tx], error) {
	deps := &d
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = 15 * time.Second
	}
	if cfg.RemindEvery <= 0 {
		cfg.RemindEvery = time.Minute
	}
	if cfg.ConnectionEvery <= 0 {
		cfg.ConnectionEvery = time.Minute
	}
	if cfg.QuotaEvery <= 0 {
		cfg.QuotaEvery = 30 * time.Second
	}
	if cfg.OutageEvery <= 0 {
		cfg.OutageEvery = 15 * time.Second
	}
	if cfg.RenewEvery <= 0 {
		cfg.RenewEvery = 10 * time.Minute
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
	river.AddWorker(workers, &deviceWorker{deps: deps})
	river.AddWorker(workers, &expiredWorker{deps: deps})
	river.AddWorker(workers, &checkoutCanceledWorker{deps: deps})
	revenueWorkers(workers, deps)
	river.AddWorker(workers, &reminderWorker{deps: deps})
	river.AddWorker(workers, &expireDueWorker{deps: deps})
	// The service is called when a job runs, not here: a queue without
	// one (broadcasts only, in tests) still builds.
	river.AddWorker(workers, &queueWorker[RemindDueArgs]{log: deps.Log, what: "reminders queued", key: "count",
		run: func(ctx context.Context) (int, error) { return deps.Service.QueueReminders(ctx) }})
	river.AddWorker(workers, &queueWorker[ConnectionDueArgs]{log: deps.Log, what: "connection tips queued", key: "count",
		run: func(ctx context.Context) (int, error) { return deps.Service.QueueConnectionChecks(ctx) }})
	river.AddWorker(workers, &connectionTipWorker{deps: deps})
	river.AddWorker(workers, &queueWorker[QuotaDueArgs]{log: deps.Log, what: "traffic quotas checked", key: "changed",
		run: func(ctx context.Context) (int, error) {
			res, err := deps.Service.EnforceQuotas(ctx)
			return res.Notices + res.Disabled + res.Enabled, err
		}})
	river.AddWorker(workers, &quotaNoticeWorker{deps: deps})
	river.AddWorker(workers, &queueWorker[OutageDueArgs]{log: deps.Log, what: "outage credits given", key: "subscriptions",
		run: func(ctx context.Context) (int, error) { return deps.Service.SettleOutages(ctx) }})
	river.AddWorker(workers, &outageCreditedWorker{deps: deps})
	river.AddWorker(workers, &sweepWorker{deps: deps, retention: cfg.Retention})
	river.AddWorker(workers, newBroadcastChunkWorker(deps, cfg.BroadcastRate))
	river.AddWorker(workers, &broadcastReportWorker{deps: deps})
	periodic := renewJobs(workers, deps, cfg)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.MaxWorkers},
			jobargs.BroadcastQueue: {MaxWorkers: broadcastWorkers}},
		Workers: workers,
		PeriodicJobs: append(periodic,
			river.NewPeriodicJob(river.PeriodicInterval(cfg.ExpireEvery),
				func() (river.JobArgs, *river.InsertOpts) { return ExpireDueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "expire_due"}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.RemindEvery),
				func() (river.JobArgs, *river.InsertOpts) { return RemindDueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "remind_due"}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.ConnectionEvery),
				func() (river.JobArgs, *river.InsertOpts) { return ConnectionDueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "connection_due"}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.QuotaEvery),
				func() (river.JobArgs, *river.InsertOpts) { return QuotaDueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "quota_due"}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.OutageEvery),
				func() (river.JobArgs, *river.InsertOpts) { return OutageDueArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "outage_due"}),
			river.NewPeriodicJob(river.PeriodicInterval(cfg.SweepEvery),
				func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true, ID: "sweep"}),
		),
		Logger:     deps.Log,
		JobTimeout: time.Minute,
		// A job its process died working is retried this long after it
		// began (River's default is an hour): a config a user waits for.
		// It exceeds JobTimeout plus what a cancelled job may still take
		// (a broadcast's last send and record, a minute at most), so a
		// live job is never worked twice.
		RescueStuckJobsAfter: 3 * time.Minute,
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

// ConnectionDueArgs queues the connection tips that are due.
type ConnectionDueArgs struct{}

func (ConnectionDueArgs) Kind() string { return "connection_due" }

func (ConnectionDueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Second}, MaxAttempts: 1}
}

// OutageDueArgs settles the outages the servers' nodes recorded.
type OutageDueArgs struct{}

func (OutageDueArgs) Kind() string { return "outage_due" }

func (OutageDueArgs) InsertOpts() river.InsertOpts {
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
	river.WorkerDefaults[jobargs.PaymentCredited]
	deps *Deps
}

// Work waits for WireGuard (the config must work when it arrives), then
// tells the user. A crash anywhere before the send leaves the job to be
// retried, so the user is told after a restart; River records completion,
// so they are told once.
func (w *paymentWorker) Work(ctx context.Context, job *river.Job[jobargs.PaymentCredited]) error {
	n, err := w.deps.Service.PaymentNotice(ctx, job.Args.PaymentID)
	if err != nil || n == nil {
		return err
	}
	if n.Bonus != nil {
		// A bonus's own notice: the days it gave, in other words than a
		// payment's. A bonus that issued a device is told by its delivery.
		bn, ok := w.deps.Notifier.(service.BonusNotifier)
		if !ok {
			w.deps.Log.WarnContext(ctx, "no notifier for bonus notices; the user is not told", "payment", job.Args.PaymentID)
			return nil
		}
		return deliver(bn.BonusCredited(ctx, n.User, n.Subscription, *n.Bonus))
	}
	if tn, ok := w.deps.Notifier.(TopUpNotifier); ok && n.TopUp > 0 {
		return deliver(tn.TopUpCredited(ctx, n.User, n.TopUp))
	}
	if err := w.deps.Notifier.PaymentCredited(ctx, n.User, n.Subscription, n.Delivery); err != nil {
		return deliver(err)
	}
	if n.Delivery != nil {
		// The device's config went with the notice; a failure to record it
		// is not worth telling the user twice.
		if err := w.deps.Service.MarkDelivered(ctx, n.Delivery.Peer.ID); err != nil {
			w.deps.Log.WarnContext(ctx, "record a delivered config", "peer", n.Delivery.Peer.ID, "err", err)
		}
	}
	return nil
}

type deviceWorker struct {
	river.WorkerDefaults[jobargs.DeviceIssued]
	deps *Deps
}

// Work delivers a new device's config unless the request that issued it
// did: it waits (snoozed, not counted as an attempt) while that request
// may still send it, then waits for WireGuard and sends, retried with
// backoff while WireGuard or Telegram fail.
func (w *deviceWorker) Work(ctx context.Context, job *river.Job[jobargs.DeviceIssued]) error {
	if w.deps.Devices == nil {
		return errors.New("no device notifier: this process cannot deliver configs")
	}
	err := w.deps.Service.DeliverIssued(ctx, job.Args, w.deps.Devices)
	var notDue *service.NotDueError
	if errors.As(err, &notDue) {
		return river.JobSnooze(notDue.Wait)
	}
	return deliver(err)
}

type expiredWorker struct {
	river.WorkerDefaults[jobargs.SubscriptionExpired]
	deps *Deps
}

func (w *expiredWorker) Work(ctx context.Context, job *river.Job[jobargs.SubscriptionExpired]) error {
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

// CheckoutNotifier tells a user their checkout was cancelled. The bot, as
// the Notifier, is one; a Notifier that is not leaves the notice unsent.
type CheckoutNotifier interface {
	CheckoutCanceled(ctx context.Context, user wgbot.User, order wgbot.Order) error
}

type checkoutCanceledWorker struct {
	river.WorkerDefaults[jobargs.CheckoutCanceled]
	deps *Deps
}

func (w *checkoutCanceledWorker) Work(ctx context.Context, job *river.Job[jobargs.CheckoutCanceled]) error {
	n, ok := w.deps.Notifier.(CheckoutNotifier)
	if !ok {
		return nil
	}
	user, order, err := w.deps.Service.OrderNotice(ctx, job.Args.OrderID)
	if err != nil {
		return err
	}
	// Paid after all (a late payment still credits): nothing to regret.
	if order.Status != wgbot.OrderCanceled || user.BlockedBot {
		return nil
	}
	return deliver(n.CheckoutCanceled(ctx, user, order))
}

type reminderWorker struct {
	river.WorkerDefaults[jobargs.Reminder]
	deps *Deps
}

func (w *reminderWorker) Work(ctx context.Context, job *river.Job[jobargs.Reminder]) error {
	user, sub, err := w.deps.Service.SubscriptionNotice(ctx, job.Args.SubscriptionID)
	if err != nil {
		return err
	}
	// A renewal moved the expiry: this period's reminder is void; the
	// remind_due job queues the new period's reminders when they are due.
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
// expiry (after downtime, say) are expired, checkouts that lapsed unpaid
// are closed and their users told, old peers of moved devices whose grace
// is over are revoked, and peers expired longer than the
// retention period free their addresses.
func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	expired, err := w.deps.Service.ExpireDue(ctx)
	if err != nil {
		return err
	}
	if lapsed, err := w.deps.Service.ExpireCheckouts(ctx); err != nil {
		return err
	} else if lapsed > 0 {
		w.deps.Log.InfoContext(ctx, "sweep", "checkouts_lapsed", lapsed)
	}
	if retired, err := w.deps.Service.RetireMoved(ctx); err != nil {
		return err
	} else if retired > 0 {
		w.deps.Log.InfoContext(ctx, "sweep", "moved_devices_retired", retired)
	}
	purged, err := w.deps.Service.PurgeExpired(ctx, w.retention)
	if len(expired) > 0 || purged > 0 {
		w.deps.Log.InfoContext(ctx, "sweep", "expired", len(expired), "purged_servers", purged)
	}
	return err
}

// queueWorker is a periodic job that queues or settles a batch and logs
// how many it did (reminders, connection tips, card renewals).
type queueWorker[T river.JobArgs] struct {
	river.WorkerDefaults[T]
	run  func(context.Context) (int, error)
	log  *slog.Logger
	what string // the log message
	key  string // the count's name in it
}

func (w *queueWorker[T]) Work(ctx context.Context, _ *river.Job[T]) error {
	n, err := w.run(ctx)
	if n > 0 {
		w.log.InfoContext(ctx, w.what, w.key, n)
	}
	return err
}

// ConnectionNotifier sends the connection check's tip. The bot, as the
// Notifier, is one; a Notifier that is not leaves the tip unsent.
type ConnectionNotifier interface {
	ConnectionTip(ctx context.Context, user wgbot.User, device wgbot.Peer) error
}

type connectionTipWorker struct {
	river.WorkerDefaults[jobargs.ConnectionTip]
	deps *Deps
}

func (w *connectionTipWorker) Work(ctx context.Context, job *river.Job[jobargs.ConnectionTip]) error {
	n, ok := w.deps.Notifier.(ConnectionNotifier)
	if !ok {
		return nil
	}
	user, peer, connected, err := w.deps.Service.ConnectionTipNotice(ctx, job.Args.PeerID)
	if errors.Is(err, wgbot.ErrPeerNotFound) {
		return nil // deleted meanwhile: nothing to help with
	}
	if err != nil {
		return err
	}
	// Connected, removed or paused since it was judged: the tip would be wrong.
	if connected || peer.Status != wgbot.PeerActive || user.BlockedBot {
		return nil
	}
	return deliver(n.ConnectionTip(ctx, user, peer))
}

// QuotaDueArgs runs the quota check (Service.EnforceQuotas).
type QuotaDueArgs struct{}

func (QuotaDueArgs) Kind() string { return "quota_due" }

func (QuotaDueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Second}, MaxAttempts: 1}
}

// QuotaNotifier tells users their traffic reached 80% or 100% of the
// month's allowance. The bot, as the Notifier, is one; a Notifier that is
// not leaves the notice unsent.
type QuotaNotifier interface {
	QuotaReached(ctx context.Context, user wgbot.User, q wgbot.Quota, level int) error
}

// TopUpNotifier tells a user a top-up's traffic was added. Without one, a
// top-up is told as a payment.
type TopUpNotifier interface {
	TopUpCredited(ctx context.Context, user wgbot.User, bytes int64) error
}

type quotaNoticeWorker struct {
	river.WorkerDefaults[jobargs.QuotaNotice]
	deps *Deps
}

func (w *quotaNoticeWorker) Work(ctx context.Context, job *river.Job[jobargs.QuotaNotice]) error {
	n, ok := w.deps.Notifier.(QuotaNotifier)
	if !ok {
		return nil
	}
	user, q, ok, err := w.deps.Service.QuotaNotice(ctx, job.Args.SubscriptionID, job.Args.Month, job.Args.Level)
	if err != nil {
		return err
	}
	// A new month, a top-up or an ended subscription since: the notice
	// would be wrong.
	if !ok || user.BlockedBot {
		return nil
	}
	return deliver(n.QuotaReached(ctx, user, q, job.Args.Level))
}

// OutageNotifier tells a user about an outage credit. The bot, as the
// Notifier, is one; a Notifier that is not leaves the message unsent.
type OutageNotifier interface {
	OutageCredited(ctx context.Context, user wgbot.User, sub wgbot.Subscription, location string, minutes int) error
}

type outageCreditedWorker struct {
	river.WorkerDefaults[jobargs.OutageCredited]
	deps *Deps
}

func (w *outageCreditedWorker) Work(ctx context.Context, job *river.Job[jobargs.OutageCredited]) error {
	n, ok := w.deps.Notifier.(OutageNotifier)
	if !ok {
		return nil
	}
	user, sub, err := w.deps.Service.SubscriptionNotice(ctx, job.Args.SubscriptionID)
	if err != nil {
		return err
	}
	// Ended since (revoked, say): "it now runs until" would be wrong. The
	// credit stays in the ledger.
	if sub.Status != wgbot.SubscriptionActive || user.BlockedBot {
		return nil
	}
	return deliver(n.OutageCredited(ctx, user, sub, job.Args.Location, job.Args.Minutes))
}
