package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

// TestOpenOrderDoesNotBlockCredit: while a Pay press holds the user's row
// (OpenOrder is stopped after taking it), an insert referencing the user,
// as crediting a payment or issuing a subscription makes, goes ahead: the
// press's lock does not conflict with the foreign key's FOR KEY SHARE.
func TestOpenOrderDoesNotBlockCredit(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var userID int64
	if err := pool.QueryRow(ctx, `INSERT INTO users (telegram_id) VALUES (1) RETURNING id`).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)

	// Stop the press after its first statement: it waits for the orders
	// table, holding the user's row lock.
	blocker, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx)
	if _, err := blocker.Exec(ctx, `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	pressed := make(chan error, 1)
	go func() {
		_, _, err := store.OpenOrder(ctx, wgbot.Order{UserID: userID, Plan: "month", Days: 30, Devices: 1, Provider: "stars",
			Amount: 150, Currency: "XTR", ExpiresAt: now.Add(time.Hour)}, postgres.OpenOrders{ReuseAfter: now.Add(-time.Hour), Max: 3}, now)
		pressed <- err
	}()
	waitUntil(t, 10*time.Second, "the press holds the user's row and waits", func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM orders%'`).Scan(&n)
		return err == nil && n == 1
	})

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET lock_timeout = '2s'`); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO subscriptions (user_id, plan, is_trial, status, device_limit, starts_at, expires_at)
		VALUES ($1, 'month', false, 'active', 1, now(), now() + interval '30 days')`, userID)
	if _, resetErr := conn.Exec(ctx, `RESET lock_timeout`); resetErr != nil {
		t.Fatal(resetErr)
	}
	if err != nil {
		t.Errorf("an insert referencing the user while a Pay press holds its row: %v", err)
	}
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-pressed; err != nil {
		t.Fatalf("the press: %v", err)
	}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A checkout that lapsed unpaid is closed and its user told once; one
// still running, and a paid one, are left alone.
func TestExpireOrders(t *testing.T) {
	ctx := context.Background()
	store, pool := broadcastStore(t, 2) // users 1 and 2, and the job queue
	var u1, u2 int64
	if err := pool.QueryRow(ctx, `SELECT min(id), max(id) FROM users`).Scan(&u1, &u2); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	open := func(user int64, provider string, expires time.Time) wgbot.Order {
		o, _, err := store.OpenOrder(ctx, wgbot.Order{UserID: user, Plan: "month", Days: 30, Devices: 1, Provider: provider,
			Amount: 150, Currency: "XTR", ExpiresAt: expires}, postgres.OpenOrders{ReuseAfter: now.Add(time.Hour), Max: 3}, now.Add(-25*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	lapsed := open(u1, "cryptopay", now.Add(-time.Minute))
	running := open(u2, "cryptopay", now.Add(time.Hour))
	paid := open(u2, "stars", now.Add(-time.Minute))
	if _, err := pool.Exec(ctx, `UPDATE orders SET status = 'paid' WHERE id = $1`, paid.ID); err != nil {
		t.Fatal(err)
	}
	for round, want := range []int{1, 0} {
		if n, err := store.ExpireOrders(ctx, now); err != nil || n != want {
			t.Fatalf("round %d: ExpireOrders = %d, %v; want %d", round+1, n, err, want)
		}
	}
	status := func(id int64) (s string) {
		pool.QueryRow(ctx, `SELECT status FROM orders WHERE id = $1`, id).Scan(&s)
		return s
	}
	if status(lapsed.ID) != "canceled" || status(running.ID) != "pending" || status(paid.ID) != "paid" {
		t.Errorf("statuses after expiry: lapsed %s, running %s, paid %s", status(lapsed.ID), status(running.ID), status(paid.ID))
	}
	if n := countRows(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'checkout_canceled'`); n != 1 {
		t.Errorf("%d cancel notices queued, want 1", n)
	}
}
