package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"wgbot/jobs"
	"wgbot/postgres/pgtest"
	"wgbot/service/servicetest"
)

type countingRenewer struct{ calls atomic.Int64 }

func (c *countingRenewer) RenewDue(context.Context) (int, error) {
	c.calls.Add(1)
	return 0, nil
}

// TestRenewDueRuns: with a Renewer the leader runs renew_due on start and
// then on its interval; without one there is no such job.
func TestRenewDueRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := servicetest.Build(ctx, pgtest.URL(t), servicetest.Options{Jobs: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Pool.Close)
	r := &countingRenewer{}
	client, err := jobs.New(s.Pool, jobs.Config{RenewEvery: 300 * time.Millisecond, SweepEvery: time.Hour},
		jobs.Deps{Service: s.Service, Notifier: recorder{s.Pool}, Devices: recorder{s.Pool}, Renewer: r, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer client.Stop(context.WithoutCancel(ctx))
	for r.calls.Load() < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("renew_due ran %d times in 30 s", r.calls.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
