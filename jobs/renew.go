package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// Renewer charges the saved cards that are due (payment.YooKassa).
type Renewer interface {
	RenewDue(ctx context.Context) (int, error)
}

// RenewDueArgs runs one pass of saved-card renewals.
type RenewDueArgs struct{}

func (RenewDueArgs) Kind() string { return "renew_due" }

// InsertOpts: one attempt, the next run is the retry; a charge's own row
// (not River) keeps a period from being charged twice, so two passes at
// once would still charge each card once.
func (RenewDueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: 5 * time.Second}, MaxAttempts: 1}
}

// renewJobs adds the renewal worker and its periodic job when there is a
// Renewer.
func renewJobs(workers *river.Workers, deps *Deps, cfg Config) []*river.PeriodicJob {
	if deps.Renewer == nil {
		return nil
	}
	river.AddWorker(workers, &queueWorker[RenewDueArgs]{run: deps.Renewer.RenewDue, log: deps.Log, what: "saved-card renewals", key: "settled"})
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(cfg.RenewEvery),
		func() (river.JobArgs, *river.InsertOpts) { return RenewDueArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true, ID: "renew_due"})}
}
