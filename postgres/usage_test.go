package postgres_test

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/secret"
)

// usageWorld is a server with n seeded peers, by public key.
func usageWorld(t *testing.T, n int) (*postgres.Store, int64, []string, []int64) {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)
	srv, err := store.EnsureServer(ctx, mainServer)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{5}, 32))
	seeded := pgtest.SeedPeers(t, pool, keys, srv.ID, netip.MustParseAddr("10.44.0.10"), n)
	pubs := make([]string, n)
	ids := make([]int64, n)
	for i, p := range seeded {
		pubs[i] = p.PublicKey.String()
		if err := pool.QueryRow(ctx, `SELECT id FROM peers WHERE public_key = $1`, pubs[i]).Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	return store, srv.ID, pubs, ids
}

func usageOf(t *testing.T, store *postgres.Store, at time.Time, id int64) wgbot.Usage {
	t.Helper()
	got, err := store.PeerUsage(context.Background(), at, []int64{id})
	if err != nil {
		t.Fatal(err)
	}
	return got[id]
}

// Deltas add up; a counter that went down was reset and counts from zero;
// a sample older than the last recorded one, or the same one again (a
// retried write), adds nothing; a new month starts from zero; a peer
// never seen connecting has no handshake; keys the database does not know
// are ignored.
func TestRecordUsage(t *testing.T) {
	ctx := context.Background()
	store, server, pubs, ids := usageWorld(t, 2)
	a, b := pubs[0], pubs[1]
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	hs := t0.Add(-time.Minute)
	record := func(at time.Time, samples ...postgres.PeerSample) {
		t.Helper()
		if err := store.RecordUsage(ctx, server, at, samples); err != nil {
			t.Fatal(err)
		}
	}
	want := func(at time.Time, id int64, rx, tx int64, hs time.Time) {
		t.Helper()
		u := usageOf(t, store, at, id)
		if u.Received != rx || u.Transmitted != tx || !u.LastSeen.Equal(hs) {
			t.Fatalf("usage %+v, want rx %d tx %d handshake %v", u, rx, tx, hs)
		}
	}
	record(t0, postgres.PeerSample{PublicKey: a, Received: 100, Transmitted: 50, LastHandshake: hs},
		postgres.PeerSample{PublicKey: b}, postgres.PeerSample{PublicKey: "not-a-peer", Received: 7})
	want(t0, ids[0], 100, 50, hs)
	if u, err := store.PeerUsage(ctx, t0, []int64{ids[1]}); err != nil || u[ids[1]] != (wgbot.Usage{}) {
		t.Fatalf("a device that never connected: %+v, %v", u, err)
	}

	t1 := t0.Add(time.Minute)
	record(t1, postgres.PeerSample{PublicKey: a, Received: 300, Transmitted: 80, LastHandshake: hs})
	want(t1, ids[0], 300, 80, hs)
	record(t1, postgres.PeerSample{PublicKey: a, Received: 300, Transmitted: 80, LastHandshake: hs}) // the write retried
	record(t1.Add(-time.Second), postgres.PeerSample{PublicKey: a, Received: 250, Transmitted: 70, LastHandshake: hs})
	want(t1, ids[0], 300, 80, hs)

	// The interface restarted: the counters start again, the handshake is
	// forgotten by the device but not by us.
	t2 := t1.Add(time.Minute)
	record(t2, postgres.PeerSample{PublicKey: a, Received: 40, Transmitted: 10})
	want(t2, ids[0], 340, 90, hs)
	hs3 := t2.Add(30 * time.Second)
	t3 := t2.Add(time.Minute)
	record(t3, postgres.PeerSample{PublicKey: a, Received: 60, Transmitted: 15, LastHandshake: hs3})
	want(t3, ids[0], 360, 95, hs3)

	// April: the month row starts at the delta since March's last sample.
	april := time.Date(2026, 4, 1, 0, 0, 30, 0, time.UTC)
	record(april, postgres.PeerSample{PublicKey: a, Received: 70, Transmitted: 15, LastHandshake: hs3})
	want(april, ids[0], 10, 0, hs3)
	want(t3, ids[0], 360, 95, hs3)

	traffic, err := store.ServerTraffic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := traffic[mainServer.Name]; got.Received != 370 || got.Transmitted != 95 {
		t.Errorf("server totals %+v, want 370 in and 95 out", got)
	}
	top, err := store.TopConsumers(ctx, t3, 10)
	if err != nil || len(top) != 1 || top[0].Total() != 455 {
		t.Errorf("top consumers in March: %+v, %v", top, err)
	}
}

// Collectors reading one device at different moments and writing at once
// (two processes owning it for a while) count every byte exactly once.
func TestRecordUsageConcurrentCollectors(t *testing.T) {
	ctx := context.Background()
	store, server, pubs, ids := usageWorld(t, 50)
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	const rounds, collectors = 40, 8
	var wg sync.WaitGroup
	errs := make(chan error, collectors)
	for c := range collectors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 1; k <= rounds; k++ {
				if (k+c)%3 == 0 && k != rounds {
					continue // this collector missed the read
				}
				samples := make([]postgres.PeerSample, len(pubs))
				for i, p := range pubs {
					samples[i] = postgres.PeerSample{PublicKey: p, Received: int64(k * 1000), Transmitted: int64(k * 10)}
				}
				if err := store.RecordUsage(ctx, server, t0.Add(time.Duration(k)*time.Second), samples); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := store.PeerUsage(ctx, t0, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if u := got[id]; u.Received != rounds*1000 || u.Transmitted != rounds*10 {
			t.Fatalf("peer %d: %+v, want %d in and %d out", id, u, rounds*1000, rounds*10)
		}
	}
}

// The connection check judges each delivered device once, after its
// deadline: a tip only for an active device with no handshake once a
// collection after the deadline showed none; none while no collection
// can tell, none for a device that connected, was paused, or waited past
// the window; nothing twice.
func TestQueueConnectionChecks(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	outbox, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, outbox)
	srv, err := store.EnsureServer(ctx, mainServer)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{5}, 32))
	seeded := pgtest.SeedPeers(t, pool, keys, srv.ID, netip.MustParseAddr("10.44.0.10"), 6)
	now := time.Now().UTC().Truncate(time.Second)
	var ids [6]int64
	for i, p := range seeded {
		if err := pool.QueryRow(ctx, `SELECT id FROM peers WHERE public_key = $1`, p.PublicKey.String()).Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	const (
		silent    = iota // delivered 20 minutes ago, never connects: the tip
		connected        // delivered 20 minutes ago, connected
		recent           // delivered 10 minutes ago: not due
		paused           // delivered 20 minutes ago, disabled since
		undelivered
		stale // delivered 2 days ago: past the window
	)
	for i, ago := range map[int]time.Duration{silent: 20 * time.Minute, connected: 20 * time.Minute, recent: 10 * time.Minute,
		paused: 20 * time.Minute, stale: 48 * time.Hour} {
		if _, err := pool.Exec(ctx, `UPDATE peers SET delivered_at = $2 WHERE id = $1`, ids[i], now.Add(-ago)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE peers SET status = 'disabled' WHERE id = $1`, ids[paused]); err != nil {
		t.Fatal(err)
	}
	check := func(wantTips int, wantUnchecked ...int) {
		t.Helper()
		n, err := store.QueueConnectionChecks(ctx, now, 15*time.Minute)
		if err != nil || n != wantTips {
			t.Fatalf("QueueConnectionChecks: %d tips, %v; want %d", n, err, wantTips)
		}
		rows, _ := pool.Query(ctx, `SELECT id FROM peers WHERE connection_checked_at IS NULL ORDER BY id`)
		got, _ := pgx.CollectRows(rows, pgx.RowTo[int64])
		var want []int64
		for _, i := range wantUnchecked {
			want = append(want, ids[i])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("unchecked devices %v, want %v", got, want)
		}
	}
	// No collection yet: nobody can tell whether the silent ones connected.
	check(0, silent, connected, recent, undelivered)
	// A collection before the deadline tells nothing either.
	if err := store.RecordUsage(ctx, srv.ID, now.Add(-10*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	check(0, silent, connected, recent, undelivered)
	if err := store.RecordUsage(ctx, srv.ID, now.Add(-time.Minute), []postgres.PeerSample{
		{PublicKey: seeded[silent].PublicKey.String()},
		{PublicKey: seeded[connected].PublicKey.String(), Received: 500, LastHandshake: now.Add(-18 * time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	check(1, recent, undelivered)
	check(0, recent, undelivered) // once
	rows, _ := pool.Query(ctx, `SELECT (args->>'peer_id')::bigint FROM river_job WHERE kind = 'connection_tip'`)
	tipped, _ := pgx.CollectRows(rows, pgx.RowTo[int64])
	if !slices.Equal(tipped, []int64{ids[silent]}) {
		t.Errorf("tips queued for %v, want only the silent device %d", tipped, ids[silent])
	}
	if _, _, connectedNow, err := store.ConnectionTipState(ctx, ids[connected]); err != nil || !connectedNow {
		t.Errorf("ConnectionTipState of the connected device: %v, %v", connectedNow, err)
	}
}
