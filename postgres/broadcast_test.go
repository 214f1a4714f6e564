package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"wgbot"
	"wgbot/jobs/jobargs"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

// broadcastStore is a store with an insert-only job client on a fresh
// database holding users 1..n.
func broadcastStore(t *testing.T, n int) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, client)
	if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO users (telegram_id) SELECT g FROM generate_series(1, %d) g`, n)); err != nil {
		t.Fatal(err)
	}
	return store, pool
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestQueueBroadcast: a broadcast is its rows and one job per chunk; bad
// input is refused and changes nothing; an empty audience is reported at once.
func TestQueueBroadcast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, pool := broadcastStore(t, 45)
	if _, err := store.QueueBroadcast(ctx, "", 1, "en"); wgbot.ErrorCode(err) != wgbot.EInvalid {
		t.Errorf("empty text: %v, want an invalid-input error", err)
	}
	if _, err := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil).QueueBroadcast(ctx, "hi", 1, "en"); err == nil {
		t.Error("a store without the job queue queued a broadcast")
	}
	if n := countRows(t, pool, `SELECT count(*) FROM broadcasts`); n != 0 {
		t.Fatalf("refused broadcasts left %d rows", n)
	}

	n, err := store.QueueBroadcast(ctx, "hello", 1, "en")
	if err != nil || n != 45 {
		t.Fatalf("QueueBroadcast: %d, %v; want 45 recipients", n, err)
	}
	if got := countRows(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'broadcast_chunk' AND queue = $1`, jobargs.BroadcastQueue); got != 3 {
		t.Errorf("%d chunk jobs for 45 recipients, want 3", got)
	}
	if got := countRows(t, pool, `SELECT count(DISTINCT chunk) FROM broadcast_recipients`); got != 3 {
		t.Errorf("recipients in %d chunks, want 3", got)
	}

	if _, err := pool.Exec(ctx, `UPDATE users SET blocked_bot = true`); err != nil {
		t.Fatal(err)
	}
	if n, err := store.QueueBroadcast(ctx, "nobody", 1, "en"); err != nil || n != 0 {
		t.Fatalf("QueueBroadcast to nobody: %d, %v", n, err)
	}
	if got := countRows(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'broadcast_report'`); got != 1 {
		t.Errorf("%d reports queued for a broadcast with no recipient, want 1", got)
	}
}

// TestRecordBroadcastSend: 40 recipients recorded by 80 goroutines at once,
// each twice with different outcomes. Each counts once, the counts add
// up, and exactly one report is queued.
func TestRecordBroadcastSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 40
	store, pool := broadcastStore(t, n)
	if _, err := store.QueueBroadcast(ctx, "hello", 7, "ru"); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := pool.QueryRow(ctx, `SELECT id FROM broadcasts`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordBroadcastSend(ctx, id, 1, "delivered?"); wgbot.ErrorCode(err) != wgbot.EInvalid {
		t.Errorf("unknown outcome: %v, want an invalid-input error", err)
	}
	outcomes := []postgres.BroadcastOutcome{postgres.BroadcastSent, postgres.BroadcastBlocked, postgres.BroadcastFailed}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			<-start
			if err := store.RecordBroadcastSend(ctx, id, int64(i%n+1), outcomes[i%3]); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	b, err := store.Broadcast(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if b.Pending != 0 || b.Sent+b.Blocked+b.Failed != n || b.FinishedAt == nil || b.AdminChat != 7 || b.Lang != "ru" {
		t.Errorf("after recording: %+v", b)
	}
	if got := countRows(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'broadcast_report'`); got != 1 {
		t.Errorf("%d reports queued, want 1", got)
	}
	if _, err := store.Broadcast(ctx, id+100); wgbot.ErrorCode(err) != wgbot.ENotFound {
		t.Errorf("unknown broadcast: %v", err)
	}
}

// TestReserveBroadcastSlot: 30 slots taken at once by goroutines over two
// pools (two processes' worth) are one interval each: none is shared, so
// the last ends 30 intervals after the first began, by the database's clock.
func TestReserveBroadcastSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, pool := broadcastStore(t, 0)
	other, err := pgxpool.New(ctx, pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stores := []*postgres.Store{store, postgres.NewStore(other, postgres.Options{LockID: 720301}, nil)}
	const n, interval = 30, 40 * time.Millisecond
	dbNow := func() time.Time {
		var now time.Time
		if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now
	}
	begin := dbNow()
	var mu sync.Mutex
	var longest time.Duration
	var slots []time.Time
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			at, wait, err := stores[i%2].ReserveBroadcastSlot(ctx, interval)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			longest = max(longest, wait)
			slots = append(slots, at)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(slots, time.Time.Compare)
	for i := 1; i < len(slots); i++ {
		if gap := slots[i].Sub(slots[i-1]); gap < interval {
			t.Errorf("slots %d and %d are %v apart, want at least %v", i-1, i, gap, interval)
		}
	}
	end := dbNow()
	var next time.Time
	if err := pool.QueryRow(ctx, `SELECT next_at FROM broadcast_pace`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next.Before(begin.Add(n*interval)) || next.After(end.Add(n*interval)) {
		t.Errorf("after %d slots of %v the next is %v after the start (took %v), want %v more", n, interval, next.Sub(begin), end.Sub(begin), n*interval)
	}
	if longest < (n-1)*interval-end.Sub(begin) {
		t.Errorf("the last of %d slots waits %v, want about %v", n, longest, (n-1)*interval)
	}
}

// TestBroadcastAudiences (issue 17, item 10): each audience is the users
// it names, never one who blocked the bot, and a broadcast to it has
// exactly them as recipients.
func TestBroadcastAudiences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, pool := broadcastStore(t, 6)
	// Users 1-6: 1 live (paid), 2 live trial, 3 expired (paid once),
	// 4 revoked trial, 5 never subscribed, 6 live but blocked the bot.
	for _, sql := range []string{
		`INSERT INTO subscriptions (user_id, plan, is_trial, status, device_limit, starts_at, expires_at)
		 SELECT id, 'month', telegram_id IN (2, 4), CASE telegram_id WHEN 3 THEN 'expired' WHEN 4 THEN 'revoked' ELSE 'active' END, 1, now(), now()
		 FROM users WHERE telegram_id IN (1, 2, 3, 4, 6)`,
		`INSERT INTO payments (provider, provider_payment_id, user_id, amount, currency, status, days)
		 SELECT 'stars', 'c' || telegram_id, id, 150, 'XTR', 'credited', 30 FROM users WHERE telegram_id IN (1, 3)`,
		`UPDATE users SET blocked_bot = true WHERE telegram_id = 6`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	want := map[wgbot.Audience][]int64{
		wgbot.AudienceAll: {1, 2, 3, 4, 5}, wgbot.AudienceActive: {1, 2},
		wgbot.AudienceExpired: {3, 4}, wgbot.AudienceNeverPaid: {2, 4, 5},
	}
	sizes, err := store.AudienceSizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range wgbot.Audiences() {
		n, err := store.QueueBroadcastTo(ctx, "to "+string(a), 1, 0, "en", a)
		if err != nil || n != len(want[a]) || sizes[a] != n {
			t.Errorf("%s: %d recipients (sized %d), %v; want %d", a, n, sizes[a], err, len(want[a]))
		}
		rows, err := pool.Query(ctx, `SELECT r.telegram_id FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id
			WHERE b.text = $1 ORDER BY 1`, "to "+string(a))
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			got = append(got, id)
		}
		if !slices.Equal(got, want[a]) {
			t.Errorf("%s recipients %v, want %v", a, got, want[a])
		}
	}
	if _, err := store.QueueBroadcastTo(ctx, "x", 1, 0, "en", "nobody"); wgbot.ErrorCode(err) != wgbot.EInvalid {
		t.Errorf("unknown audience: %v", err)
	}
}

// TestQueueBroadcastOncePerPreview: many Sends of one preview at once
// (two taps, several webhook processes) queue one broadcast; the others
// get ErrBroadcastSent and add no recipient and no job. Another preview
// of the same text is a broadcast of its own.
func TestQueueBroadcastOncePerPreview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, pool := broadcastStore(t, 30)
	const sends = 8
	var wg sync.WaitGroup
	errs := make([]error, sends)
	for i := range sends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = store.QueueBroadcastTo(ctx, "once", 7, 55, "en", wgbot.AudienceAll)
		}()
	}
	wg.Wait()
	queued := 0
	for _, err := range errs {
		switch {
		case err == nil:
			queued++
		case !errors.Is(err, wgbot.ErrBroadcastSent):
			t.Errorf("a repeated Send: %v, want ErrBroadcastSent", err)
		}
	}
	if queued != 1 {
		t.Errorf("%d Sends of one preview queued, want 1", queued)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM broadcasts`); n != 1 {
		t.Errorf("%d broadcasts, want 1", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM broadcast_recipients`); n != 30 {
		t.Errorf("%d recipients, want 30", n)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM river_job WHERE kind = $1`, jobargs.BroadcastChunk{}.Kind()); n != 2 {
		t.Errorf("%d chunk jobs, want 2", n)
	}
	if _, err := store.QueueBroadcastTo(ctx, "once", 7, 56, "en", wgbot.AudienceAll); err != nil {
		t.Errorf("another preview: %v", err)
	}
}
