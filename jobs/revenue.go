package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"wgbot"
	"wgbot/jobs/jobargs"
	"wgbot/service"
)

// RevenueNotices is what the revenue notices read of the service:
// *service.Service implements it. A Service that does not leaves them
// failing, to be retried by a process that has one.
type RevenueNotices interface {
	OrderNotice(ctx context.Context, orderID int64) (wgbot.User, wgbot.Order, error)
	GiftNotice(ctx context.Context, giftID int64) (wgbot.User, wgbot.Gift, error)
	BonusNotice(ctx context.Context, ledgerID int64) (wgbot.User, wgbot.Subscription, error)
}

// RevenueNotifier tells users what happened to their money and bonuses:
// a renewal charge that did not renew, a paid gift's link, a referral
// bonus a refund took back. The bot, as the Notifier, is one.
type RevenueNotifier interface {
	RenewalFailed(ctx context.Context, user wgbot.User, order wgbot.Order, outcome wgbot.RenewalFailure, until time.Time) error
	GiftReady(ctx context.Context, buyer wgbot.User, gift wgbot.Gift) error
	BonusTakenBack(ctx context.Context, user wgbot.User, sub wgbot.Subscription, days int) error
}

var errNoRevenueNotices = errors.New("this process cannot send revenue notices: its service or notifier lacks them")

// revenueWorkers adds the workers of the revenue notices.
func revenueWorkers(workers *river.Workers, deps *Deps) {
	river.AddWorker(workers, &renewalFailedWorker{deps: deps})
	river.AddWorker(workers, &giftReadyWorker{deps: deps})
	river.AddWorker(workers, &bonusTakenBackWorker{deps: deps})
}

func revenueDeps(d *Deps) (RevenueNotices, RevenueNotifier, error) {
	svc, ok1 := d.Service.(RevenueNotices)
	n, ok2 := d.Notifier.(RevenueNotifier)
	if !ok1 || !ok2 {
		return nil, nil, errNoRevenueNotices
	}
	return svc, n, nil
}

type renewalFailedWorker struct {
	river.WorkerDefaults[jobargs.RenewalFailed]
	deps *Deps
}

func (w *renewalFailedWorker) Work(ctx context.Context, job *river.Job[jobargs.RenewalFailed]) error {
	svc, n, err := revenueDeps(w.deps)
	if err != nil {
		return err
	}
	user, order, err := svc.OrderNotice(ctx, job.Args.OrderID)
	if err != nil {
		return err
	}
	// Paid after all (an unconfirmed charge went through): nothing failed.
	if order.Status == wgbot.OrderPaid || user.BlockedBot {
		return nil
	}
	return deliver(n.RenewalFailed(ctx, user, order, wgbot.RenewalFailure(job.Args.Outcome), job.Args.PeriodEnd))
}

type giftReadyWorker struct {
	river.WorkerDefaults[jobargs.GiftReady]
	deps *Deps
}

// Work sends the gift's link to its buyer. The link is sent even if the
// gift was redeemed or refunded since: it is what they paid for, and the
// bot says what opening it does now.
func (w *giftReadyWorker) Work(ctx context.Context, job *river.Job[jobargs.GiftReady]) error {
	svc, n, err := revenueDeps(w.deps)
	if err != nil {
		return err
	}
	buyer, gift, err := svc.GiftNotice(ctx, job.Args.GiftID)
	if err != nil || buyer.BlockedBot {
		return err
	}
	return deliver(n.GiftReady(ctx, buyer, gift))
}

type bonusTakenBackWorker struct {
	river.WorkerDefaults[jobargs.BonusTakenBack]
	deps *Deps
}

func (w *bonusTakenBackWorker) Work(ctx context.Context, job *river.Job[jobargs.BonusTakenBack]) error {
	svc, n, err := revenueDeps(w.deps)
	if err != nil {
		return err
	}
	user, sub, err := svc.BonusNotice(ctx, job.Args.LedgerID)
	if err != nil || user.BlockedBot {
		return err
	}
	return deliver(n.BonusTakenBack(ctx, user, sub, job.Args.Days))
}

var _ RevenueNotices = (*service.Service)(nil)
