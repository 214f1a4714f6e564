package service_test

import (
	"context"
	"testing"
	"time"

	"wgbot/jobs/jobargs"
)

// TestDeviceIssuedJobBeforeLock: every path that issues a device (trial,
// added device, grant) inserts its delivery job before it waits for the
// allocator's lock, so the job adds no round trip while the lock is held;
// and the job is scheduled when the issuing request has had its chance
// (WG_RECONCILE_WAIT + 5 s after), not due at once only to snooze.
func TestDeviceIssuedJobBeforeLock(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.38.0.0/24", nil, storeSetup{jobs: true})
	trialUser, grantUser := e.user(t, 1), e.user(t, 2)
	const applyWait = time.Second // newEnv's ApplyWait
	steps := []struct {
		name  string
		issue func() error
	}{
		{"trial", func() error { _, err := e.svc.IssueTrial(ctx, trialUser); return err }},
		{"grant", func() error { _, _, err := e.svc.Grant(ctx, grantUser, 30, 3); return err }},
		{"add device", func() error { _, err := e.svc.AddDevice(ctx, grantUser, "laptop"); return err }},
	}
	for _, step := range steps {
		blocker, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := blocker.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 1)`, testLockID); err != nil {
			t.Fatal(err)
		}
		issued := make(chan error, 1)
		go func() { issued <- step.issue() }()
		var waiter int
		deadline := time.Now().Add(10 * time.Second)
		for waiter == 0 && time.Now().Before(deadline) {
			// Only this test's lock in this test's database: other
			// packages' tests wait on advisory locks of their own.
			_ = e.pool.QueryRow(ctx, `SELECT coalesce(max(pid), 0) FROM pg_locks
				WHERE locktype = 'advisory' AND NOT granted AND classid = $1::int8::oid AND objid = 1 AND objsubid = 2
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, testLockID).Scan(&waiter)
			time.Sleep(10 * time.Millisecond)
		}
		var jobLocked bool
		err = e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE pid = $1 AND relation = 'river_job'::regclass AND mode = 'RowExclusiveLock')`, waiter).Scan(&jobLocked)
		if rerr := blocker.Rollback(ctx); rerr != nil {
			t.Fatal(rerr)
		}
		if ierr := <-issued; ierr != nil {
			t.Fatalf("%s: %v", step.name, ierr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if waiter == 0 {
			t.Fatalf("%s: never waited for the allocator's lock", step.name)
		}
		if !jobLocked {
			t.Errorf("%s: waited for the allocator's lock before inserting its delivery job", step.name)
		}
	}
	// Extending a live subscription issues no device; its job, inserted
	// before that was known, finds no peer and ends (TestDeliverIssued).
	if _, _, err := e.svc.Grant(ctx, grantUser, 10, 3); err != nil {
		t.Fatal(err)
	}
	rows, err := e.pool.Query(ctx, `SELECT args->>'reason', EXTRACT(EPOCH FROM scheduled_at - created_at)::float8
		FROM river_job WHERE kind = 'device_issued' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var reason string
		var ahead float64
		if err := rows.Scan(&reason, &ahead); err != nil {
			t.Fatal(err)
		}
		n++
		// created_at is the database's clock, scheduled_at the process's:
		// a second of slack either way.
		if want := (applyWait + 5*time.Second).Seconds(); ahead < want-1 || ahead > want+1 {
			t.Errorf("%s job scheduled %.1fs after its insert, want about %.0fs", reason, ahead, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("%d device_issued jobs, want 4 (trial, grant, device, extending grant)", n)
	}
	var args jobargs.DeviceIssued
	if err := e.pool.QueryRow(ctx, `SELECT args->>'public_key', args->>'reason', coalesce((args->>'days')::int, 0)
		FROM river_job WHERE kind = 'device_issued' ORDER BY id DESC LIMIT 1`).Scan(&args.PublicKey, &args.Reason, &args.Days); err != nil {
		t.Fatal(err)
	}
	sent := &notices{}
	if err := e.svc.DeliverIssued(ctx, args, sent); err != nil || sent.count() != 0 {
		t.Errorf("the job of a grant that issued no device: %v, %d sent; want nothing", err, sent.count())
	}
}
