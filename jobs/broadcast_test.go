package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"wgbot"
	"wgbot/jobs"
	"wgbot/jobs/jobargs"
	"wgbot/postgres"
	"wgbot/service/servicetest"
)

// tableSender is a BroadcastSender that writes each send to a table, so
// sends from several clients and processes are counted in one place.
// Users whose id ends in 7 have blocked the bot; ids ending in 3 fail.
type tableSender struct{ pool *pgxpool.Pool }

func (s tableSender) SendBroadcast(ctx context.Context, chatID int64, text string) error {
	switch chatID % 10 {
	case 7:
		return fmt.Errorf("sendMessage to %d: %w", chatID, wgbot.ErrUserBlocked)
	case 3:
		return errors.New("sendMessage: 502 Bad Gateway")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO test_broadcast_sends (telegram_id, text, pid, at) VALUES ($1, $2, $3, clock_timestamp())`,
		chatID, text, os.Getpid())
	return err
}

func (s tableSender) BroadcastDone(ctx context.Context, adminChat int64, lang string, delivered, blocked, failed int) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO test_broadcast_reports (admin_chat, lang, delivered, blocked, failed) VALUES ($1, $2, $3, $4, $5)`,
		adminChat, lang, delivered, blocked, failed)
	return err
}

// slotRecorder is the store, writing each broadcast send slot it reserves
// to a table: the pace is the slots' spacing, whatever a stalled process
// then does with them.
type slotRecorder struct {
	*postgres.Store
	pool *pgxpool.Pool
}

func (r slotRecorder) ReserveBroadcastSlot(ctx context.Context, interval time.Duration) (time.Time, time.Duration, error) {
	at, wait, err := r.Store.ReserveBroadcastSlot(ctx, interval)
	if err != nil {
		return at, wait, err
	}
	_, err = r.pool.Exec(ctx, `INSERT INTO test_broadcast_slots (pid, at) VALUES ($1, $2)`, os.Getpid(), at)
	return at, wait, err
}

// broadcastSetup makes a database with n users and the tables tableSender
// writes.
func broadcastSetup(t *testing.T, n int) (string, *pgxpool.Pool) {
	t.Helper()
	url, pool := setupDB(t)
	for _, sql := range []string{
		`CREATE TABLE test_broadcast_sends (telegram_id bigint, text text, pid int, at timestamptz)`,
		`CREATE TABLE test_broadcast_reports (admin_chat bigint, lang text, delivered int, blocked int, failed int)`,
		`CREATE TABLE test_broadcast_slots (pid int, at timestamptz)`,
		fmt.Sprintf(`INSERT INTO users (telegram_id) SELECT 1000 + g FROM generate_series(1, %d) g`, n),
	} {
		if _, err := pool.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	return url, pool
}

// startJobs starts client until the test ends.
func startJobs(t *testing.T, client *river.Client[pgx.Tx]) {
	t.Helper()
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client.Stop(stop)
	})
}

// broadcastClient is one process's job client, with the broadcast workers
// sending through tableSender at rate messages a second (all processes
// together).
func broadcastClient(pool *pgxpool.Pool, rate float64) (*river.Client[pgx.Tx], *postgres.Store, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	outbox, err := jobs.NewOutbox(pool, log)
	if err != nil {
		return nil, nil, err
	}
	store := postgres.NewStore(pool, postgres.Options{LockID: servicetest.LockID}, outbox)
	client, err := jobs.New(pool, jobs.Config{ExpireEvery: time.Hour, RemindEvery: time.Hour, SweepEvery: time.Hour, BroadcastRate: rate},
		jobs.Deps{Log: log, Notifier: recorder{pool}, Broadcasts: slotRecorder{store, pool}, Broadcaster: tableSender{pool}})
	if err != nil {
		return nil, nil, err
	}
	return client, store, nil
}

// checkBroadcast: every user who had not blocked the bot got the text
// exactly once, and the one report counts every outcome right.
func checkBroadcast(t *testing.T, pool *pgxpool.Pool, users int, text string, blockedBefore int) {
	t.Helper()
	var want struct{ delivered, blocked, failed int }
	for id := 1001; id <= 1000+users; id++ {
		switch {
		case id%10 == 7:
			want.blocked++
		case id%10 == 3:
			want.failed++
		default:
			want.delivered++
		}
	}
	// The users marked blocked before the broadcast was queued are no
	// recipients (ids 1001..: none end in 3 or 7 among them).
	want.delivered -= blockedBefore
	if dup := count(t, pool, `SELECT count(*) FROM (SELECT telegram_id FROM test_broadcast_sends GROUP BY telegram_id HAVING count(*) > 1) d`); dup != 0 {
		t.Errorf("%d users got the broadcast more than once", dup)
	}
	if got := count(t, pool, `SELECT count(DISTINCT telegram_id) FROM test_broadcast_sends WHERE text = $1`, text); got != want.delivered {
		t.Errorf("%d users got the broadcast, want %d", got, want.delivered)
	}
	var r struct{ delivered, blocked, failed int }
	var reports int
	err := pool.QueryRow(context.Background(), `SELECT count(*), coalesce(max(delivered), 0), coalesce(max(blocked), 0), coalesce(max(failed), 0)
		FROM test_broadcast_reports WHERE admin_chat = 42 AND lang = 'ru'`).Scan(&reports, &r.delivered, &r.blocked, &r.failed)
	if err != nil {
		t.Fatal(err)
	}
	if reports != 1 || r != want {
		t.Errorf("%d reports, last %+v; want one, %+v", reports, r, want)
	}
}

// TestBroadcastSurvivesRestart: the job client is stopped in the middle of
// a broadcast to 300 users and a new one started, as a restart does.
// Every user gets the text exactly once, and the admin one report.
func TestBroadcastSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	const users = 300
	_, pool := broadcastSetup(t, users)
	// Two users blocked the bot before: they are not recipients.
	if _, err := pool.Exec(ctx, `UPDATE users SET blocked_bot = true WHERE telegram_id IN (1001, 1002)`); err != nil {
		t.Fatal(err)
	}
	first, store, err := broadcastClient(pool, 100)
	if err != nil {
		t.Fatal(err)
	}
	const text = "Maintenance tonight at 02:00 UTC."
	n, err := store.QueueBroadcast(ctx, text, 42, "ru")
	if err != nil || n != users-2 {
		t.Fatalf("QueueBroadcast: %d recipients, %v; want %d", n, err, users-2)
	}
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the first sends", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_broadcast_sends`) >= 50
	})
	stop, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := first.StopAndCancel(stop); err != nil {
		t.Fatal(err)
	}
	midway := count(t, pool, `SELECT count(*) FROM test_broadcast_sends`)
	if midway >= users*7/10 {
		t.Fatalf("%d sends before the stop: the broadcast was nearly done, the test proves nothing", midway)
	}
	t.Logf("%d sends before the restart", midway)

	second, _, err := broadcastClient(pool, 100)
	if err != nil {
		t.Fatal(err)
	}
	startJobs(t, second)
	waitFor(t, 60*time.Second, "the report", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_broadcast_reports`) > 0
	})
	time.Sleep(500 * time.Millisecond) // a second report would come about now
	checkBroadcast(t, pool, users, text, 2)
	if got := count(t, pool, `SELECT count(*) FROM broadcasts WHERE pending = 0 AND finished_at IS NOT NULL`); got != 1 {
		t.Errorf("%d finished broadcasts, want 1", got)
	}
}

// TestBroadcastGone: a chunk of a broadcast that no longer exists is
// cancelled, not retried for days.
func TestBroadcastGone(t *testing.T) {
	ctx := context.Background()
	_, pool := broadcastSetup(t, 0)
	client, _, err := broadcastClient(pool, 100)
	if err != nil {
		t.Fatal(err)
	}
	job, err := client.Insert(ctx, jobargs.BroadcastChunk{BroadcastID: 999, Chunk: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	startJobs(t, client)
	waitFor(t, 20*time.Second, "the chunk cancelled", func() bool {
		return count(t, pool, `SELECT count(*) FROM river_job WHERE id = $1 AND state = 'cancelled'`, job.Job.ID) == 1
	})
}

// runBroadcastChild is one process of TestBroadcastPacedAcrossProcesses:
// a job client with the broadcast workers, until SIGTERM.
func runBroadcastChild() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("CHILD_DB"))
	if err != nil {
		return err
	}
	defer pool.Close()
	rate, err := strconv.ParseFloat(os.Getenv("CHILD_BROADCAST_RATE"), 64)
	if err != nil {
		return err
	}
	client, _, err := broadcastClient(pool, rate)
	if err != nil {
		return err
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.Stop(stopCtx)
}

// TestBroadcastPacedAcrossProcesses: three processes share one broadcast
// at 20 messages a second. The rate is the rate of all of them together:
// no second holds more than 20 of the send slots they reserved, where each
// pacing itself would take 60; every send had its slot; and every user gets
// it once. The slots, not the sends' own times, are counted: on a loaded
// machine a stalled process sends its reserved slots late, in a bunch.
func TestBroadcastPacedAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	const users, rate = 150, 20
	url, pool := broadcastSetup(t, users)
	_, store, err := broadcastClient(pool, rate) // insert-only, as the bot's process
	if err != nil {
		t.Fatal(err)
	}
	children := startChildren(t, 3, "CHILD_ROLE=broadcast", "CHILD_DB="+url, "CHILD_BROADCAST_RATE="+strconv.Itoa(rate))
	const text = "New servers in Amsterdam."
	if _, err := store.QueueBroadcast(ctx, text, 42, "ru"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the report", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_broadcast_reports`) > 0
	})
	stopChildren(t, children)
	checkBroadcast(t, pool, users, text, 0)
	if pids := count(t, pool, `SELECT count(DISTINCT pid) FROM test_broadcast_sends`); pids < 2 {
		t.Errorf("only %d process sent: the test shows no sharing", pids)
	}
	// Every message sent or tried (all but the blocked users) had a slot.
	if slots, tried := count(t, pool, `SELECT count(*) FROM test_broadcast_slots`), users-users/10; slots < tried {
		t.Errorf("%d slots reserved for %d sends", slots, tried)
	}
	if pids := count(t, pool, `SELECT count(DISTINCT pid) FROM test_broadcast_slots`); pids < 2 {
		t.Errorf("only %d process reserved slots", pids)
	}
	// Slots in any one second, by the database's clock.
	maxWindow := count(t, pool, `SELECT coalesce(max(n), 0) FROM (
		SELECT (SELECT count(*) FROM test_broadcast_slots b WHERE b.at >= a.at AND b.at < a.at + interval '1 second') n
		FROM test_broadcast_slots a) w`)
	t.Logf("at most %d send slots in one second", maxWindow)
	if maxWindow > rate {
		t.Errorf("%d send slots within one second over all processes, want at most %d", maxWindow, rate)
	}
}

// failingSlots is the store with its send slots unavailable: every chunk
// job fails.
type failingSlots struct{ *postgres.Store }

func (failingSlots) ReserveBroadcastSlot(context.Context, time.Duration) (time.Time, time.Duration, error) {
	return time.Time{}, 0, errors.New("broadcast_pace: connection reset")
}

// TestBroadcastChunkGivesUp: a chunk job that fails its last attempt
// records its pending recipients as failed, so the broadcast finishes and
// the admin gets the one report (here: all failed but the blocked users).
func TestBroadcastChunkGivesUp(t *testing.T) {
	ctx := context.Background()
	const users = 30
	_, pool := broadcastSetup(t, users)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	outbox, err := jobs.NewOutbox(pool, log)
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(pool, postgres.Options{LockID: servicetest.LockID}, outbox)
	client, err := jobs.New(pool, jobs.Config{ExpireEvery: time.Hour, RemindEvery: time.Hour, SweepEvery: time.Hour, BroadcastRate: 100},
		jobs.Deps{Log: log, Notifier: recorder{pool}, Broadcasts: failingSlots{store}, Broadcaster: tableSender{pool}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.QueueBroadcast(ctx, "hello", 42, "ru"); err != nil {
		t.Fatal(err)
	}
	// One attempt each, so the test need not wait through River's backoff.
	if _, err := pool.Exec(ctx, `UPDATE river_job SET max_attempts = 1 WHERE kind = 'broadcast_chunk'`); err != nil {
		t.Fatal(err)
	}
	startJobs(t, client)
	waitFor(t, 30*time.Second, "the report", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_broadcast_reports`) > 0
	})
	var delivered, blocked, failed, reports int
	if err := pool.QueryRow(ctx, `SELECT count(*), max(delivered), max(blocked), max(failed) FROM test_broadcast_reports`).
		Scan(&reports, &delivered, &blocked, &failed); err != nil {
		t.Fatal(err)
	}
	if reports != 1 || delivered != 0 || failed+blocked != users {
		t.Errorf("%d reports, %d delivered, %d blocked, %d failed; want one, all %d failed or blocked", reports, delivered, blocked, failed, users)
	}
	if n := count(t, pool, `SELECT count(*) FROM broadcast_recipients WHERE status = 'pending'`); n != 0 {
		t.Errorf("%d recipients still pending", n)
	}
}
