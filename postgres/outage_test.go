package postgres_test

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"wgbot/postgres"
	"wgbot/postgres/pgtest"
)

// A node's outage is recorded by the node itself, once, when a new node
// process (another boot) first reports: the gap since the old one's last
// heartbeat. A node that kept running while it could not reach the
// database (the same boot) records none, nor does a first report ever.
// Its restart's first heartbeat and first applied revision race; whichever
// lands first ends the gap, and the outage is recorded once.
func TestNodeRecordsItsOutage(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)
	srv, err := store.AddServer(ctx, postgres.NewServer{Name: "ams-1", Location: "Amsterdam", Endpoint: "ams:51820",
		Subnet: netip.MustParsePrefix("10.60.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	outages := func() (n int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM server_outages WHERE server_id = $1`, srv.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	report := func(boot string) {
		t.Helper()
		if err := store.ReportNode(ctx, srv.ID, postgres.NodeReport{Boot: boot, Revision: 1}); err != nil {
			t.Fatal(err)
		}
	}
	silence := func(d time.Duration) time.Time { // the node's last heartbeat moves d back
		t.Helper()
		var at time.Time
		if err := pool.QueryRow(ctx, `UPDATE node_status SET seen_at = now() - $2::interval WHERE server_id = $1 RETURNING seen_at`,
			srv.ID, d).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}

	report("boot-1") // the first report ever
	silence(time.Hour)
	report("boot-1") // the same process, back from a database cut
	if n := outages(); n != 0 {
		t.Fatalf("%d outages after a first report and a database cut, want 0", n)
	}
	last := silence(40 * time.Minute)
	if err := store.NodeApplied(ctx, srv.ID, "boot-2", 2); err != nil { // restarted: its first resync lands first
		t.Fatal(err)
	}
	report("boot-2")
	var started, ended time.Time
	if err := pool.QueryRow(ctx, `SELECT started_at, ended_at FROM server_outages WHERE server_id = $1`, srv.ID).Scan(&started, &ended); err != nil {
		t.Fatalf("the restart recorded no outage: %v", err)
	}
	if !started.Equal(last) || ended.Sub(started) < 40*time.Minute || ended.Sub(started) > 41*time.Minute {
		t.Errorf("outage %s to %s, want from the last heartbeat %s, about 40 minutes", started, ended, last)
	}
	if n := outages(); n != 1 {
		t.Fatalf("%d outages after one restart, want 1", n)
	}

	// A restart's reports, many at once from both paths: one outage.
	silence(time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs <- store.ReportNode(ctx, srv.ID, postgres.NodeReport{Boot: "boot-3", Revision: 3})
			} else {
				errs <- store.NodeApplied(ctx, srv.ID, "boot-3", 3)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := outages(); n != 2 {
		t.Fatalf("%d outages after a second restart reported 32 times at once, want 2", n)
	}
	// A report without a boot (a tool, an older node) records none.
	silence(time.Hour)
	report("")
	if n := outages(); n != 2 {
		t.Fatalf("a report with no boot recorded an outage: %d", n)
	}
}
