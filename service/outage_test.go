package service_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres"
	"wgbot/secret"
	"wgbot/service"
)

// outageChildRole settles outages from another process at CHILD_START.
const outageChildRole = "settle-outages"

// outageService is e's service on server srv with outage credit after
// creditAfter.
func outageService(e *env, srv wgbot.Server, creditAfter time.Duration) (*service.Service, error) {
	keys, err := secret.NewKeyring(testKey)
	if err != nil {
		return nil, err
	}
	return service.New(e.store, keys, nil, service.Config{Server: srv, Plans: service.DefaultPlans(), TrialDays: 3,
		ClientRoutes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, OutageCreditAfter: creditAfter},
		nil, slog.New(slog.NewTextHandler(io.Discard, nil))), nil
}

func runOutageChild(ctx context.Context, role string) (bool, error) {
	if role != outageChildRole {
		return false, nil
	}
	e, err := newEnv(ctx, os.Getenv("CHILD_DB"), os.Getenv("CHILD_SUBNET"), nil, storeSetup{jobs: true})
	if err != nil {
		return true, err
	}
	defer e.pool.Close()
	srv, err := e.store.Server(ctx, 1)
	if err != nil {
		return true, err
	}
	svc, err := outageService(e, srv, 30*time.Minute)
	if err != nil {
		return true, err
	}
	_, err = settleAll(ctx, svc, 4, childStart())
	return true, err
}

// settleAll settles outages from n goroutines at once, at start, and
// returns how many subscriptions they credited together.
func settleAll(ctx context.Context, svc *service.Service, n int, start time.Time) (int, error) {
	time.Sleep(time.Until(start))
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	var first error
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := svc.SettleOutages(ctx)
			mu.Lock()
			defer mu.Unlock()
			total += got
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	return total, first
}

// nodeRestart has server's node report as one process, go silent for
// gap, and come back as another: the outage the node records.
func nodeRestart(t *testing.T, e *env, serverID int64, gap time.Duration) {
	t.Helper()
	ctx := context.Background()
	old := fmt.Sprintf("boot-%d-old", serverID)
	if err := e.store.ReportNode(ctx, serverID, postgres.NodeReport{Boot: old, Revision: 1}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, e.pool, `UPDATE node_status SET seen_at = now() - $2::interval WHERE server_id = $1`, serverID, gap)
	if err := e.store.ReportNode(ctx, serverID, postgres.NodeReport{Boot: old + "-new", Revision: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestOutageCreditOnce: server A's node is gone 61½ minutes, then back.
// Its outage is settled by five goroutines here and four in each of two
// other processes at once: every live subscription that had a device on A
// when the node went gets 62 minutes (the downtime, rounded up to the
// minute) once, as one ledger row keyed outage:<id>:<subscription> and one
// message job. Subscriptions on server B, whose node only lost the
// database (no restart), a device issued on A during the outage, a device
// revoked before it and an ended subscription get nothing.
func TestOutageCreditOnce(t *testing.T) {
	ctx := context.Background()
	const subnet = "10.190.0.0/24"
	e := setupWith(t, subnet, nil, storeSetup{jobs: true})
	srvA, err := e.store.Server(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := e.store.EnsureServer(ctx, wgbot.Server{Name: "fra-1", Interface: "wg0", Endpoint: "fra.example.com:51820",
		Subnet: netip.MustParsePrefix("10.191.0.0/24"), Address: netip.MustParseAddr("10.191.0.1"), PublicKey: "c2VydmVyQg==", DNS: []string{"1.1.1.1"}, MTU: 1420})
	if err != nil {
		t.Fatal(err)
	}
	onA, err := outageService(e, srvA, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	onB, err := outageService(e, srvB, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	trial := func(svc *service.Service, id int64) wgbot.User {
		t.Helper()
		u := e.user(t, id)
		if _, err := svc.IssueTrial(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	var affected, unaffected []wgbot.User
	for i := range 6 {
		affected = append(affected, trial(onA, int64(100+i)))
	}
	for i := range 3 {
		unaffected = append(unaffected, trial(onB, int64(200+i)))
	}
	revoked, ended := trial(onA, 300), trial(onA, 301)
	// The devices so far were there two hours before; the outage began an
	// hour ago, the revoked one was gone by then.
	mustExec(t, e.pool, `UPDATE peers SET created_at = now() - interval '2 hours'`)
	if err := onA.Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	mustExec(t, e.pool, `UPDATE peers SET revoked_at = now() - interval '90 minutes' WHERE status = 'revoked'`)
	mustExec(t, e.pool, `UPDATE subscriptions SET status = 'expired', expires_at = now() - interval '1 minute'
		WHERE user_id = $1`, ended.ID)
	late := trial(onA, 302) // issued while the node was down (a request waits, the node applies it later)
	unaffected = append(unaffected, late)

	before := map[int64]time.Time{}
	for _, u := range append(append([]wgbot.User{}, affected...), unaffected...) {
		before[u.ID] = e.subscription(t, u).ExpiresAt
	}
	nodeRestart(t, e, srvA.ID, 61*time.Minute+30*time.Second)
	// B's node kept running but lost the database for an hour: no outage.
	if err := e.store.ReportNode(ctx, srvB.ID, postgres.NodeReport{Boot: "b", Revision: 1}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, e.pool, `UPDATE node_status SET seen_at = now() - interval '1 hour' WHERE server_id = $1`, srvB.ID)
	if err := e.store.ReportNode(ctx, srvB.ID, postgres.NodeReport{Boot: "b", Revision: 1}); err != nil {
		t.Fatal(err)
	}

	start := time.Now().Add(2 * time.Second)
	children := startChildren(t, 2, outageChildRole, "CHILD_DB="+e.url, "CHILD_SUBNET="+subnet,
		"CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
	if _, err := settleAll(ctx, onA, 5, start); err != nil {
		t.Fatal(err)
	}
	waitAll(t, children)
	if again, err := onA.SettleOutages(ctx); err != nil || again != 0 {
		t.Fatalf("settling again credited %d (%v), want 0", again, err)
	}

	var outageID int64
	var credit time.Duration
	var credited int
	if err := e.pool.QueryRow(ctx, `SELECT id, credit, subscriptions FROM server_outages WHERE server_id = $1 AND settled_at IS NOT NULL`,
		srvA.ID).Scan(&outageID, &credit, &credited); err != nil {
		t.Fatalf("A's outage is not settled: %v", err)
	}
	if credit != 62*time.Minute || credited != len(affected) {
		t.Errorf("A's outage settled with %v for %d subscriptions, want 62m0s for %d", credit, credited, len(affected))
	}
	if n := count(t, e.pool, `SELECT count(*) FROM server_outages`); n != 1 {
		t.Errorf("%d outages recorded, want only A's", n)
	}
	for _, u := range affected {
		sub := e.subscription(t, u)
		if want := before[u.ID].Add(62 * time.Minute); !sub.ExpiresAt.Equal(want) {
			t.Errorf("user %d's subscription ends %s, want %s (62 minutes later)", u.TelegramID, sub.ExpiresAt, want)
		}
		key := fmt.Sprintf("outage:%d:%d", outageID, sub.ID)
		if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'outage' AND provider = 'outage'
			AND provider_payment_id = $1 AND user_id = $2 AND days = 0 AND amount = 0 AND credited_until = $3`, key, u.ID, sub.ExpiresAt); n != 1 {
			t.Errorf("user %d: %d ledger rows %s up to the new expiry, want 1", u.TelegramID, n, key)
		}
		if n := count(t, e.pool, `SELECT count(*) FROM river_job WHERE kind = 'outage_credited'
			AND (args->>'subscription_id')::bigint = $1 AND args->>'location' = $2 AND (args->>'minutes')::int = 62`, sub.ID, srvA.Name); n != 1 {
			t.Errorf("user %d: %d outage messages queued, want 1", u.TelegramID, n)
		}
	}
	for _, u := range unaffected {
		if got := e.subscription(t, u).ExpiresAt; !got.Equal(before[u.ID]) {
			t.Errorf("user %d (not on A when it went) got credit: ends %s, was %s", u.TelegramID, got, before[u.ID])
		}
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'outage'`); n != len(affected) {
		t.Errorf("%d outage ledger rows, want %d", n, len(affected))
	}
	if n := count(t, e.pool, `SELECT count(*) FROM river_job WHERE kind = 'outage_credited'`); n != len(affected) {
		t.Errorf("%d outage messages queued, want %d", n, len(affected))
	}
	e.checkInvariants(t)
}

// An outage shorter than OUTAGE_CREDIT_AFTER, or any with crediting off,
// is settled with no credit, and stays settled when the setting changes.
func TestOutageShortOrOff(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.192.0.0/24", nil, storeSetup{jobs: true})
	srv, err := e.store.Server(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		gap   time.Duration
		after time.Duration
	}{{"shorter than the threshold", 29 * time.Minute, 30 * time.Minute}, {"credit off", 3 * time.Hour, 0}} {
		t.Run(c.name, func(t *testing.T) {
			svc, err := outageService(e, srv, c.after)
			if err != nil {
				t.Fatal(err)
			}
			u := e.user(t, time.Now().UnixNano()%1_000_000_000)
			if _, err := svc.IssueTrial(ctx, u); err != nil {
				t.Fatal(err)
			}
			mustExec(t, e.pool, `UPDATE peers SET created_at = now() - interval '1 day'`)
			was := e.subscription(t, u).ExpiresAt
			nodeRestart(t, e, srv.ID, c.gap)
			if n, err := svc.SettleOutages(ctx); err != nil || n != 0 {
				t.Fatalf("credited %d (%v), want 0", n, err)
			}
			if got := e.subscription(t, u).ExpiresAt; !got.Equal(was) {
				t.Errorf("the subscription moved from %s to %s", was, got)
			}
			if n := count(t, e.pool, `SELECT count(*) FROM server_outages WHERE settled_at IS NULL OR credit <> '0'`); n != 0 {
				t.Errorf("%d outages unsettled or credited", n)
			}
			// Settled once: a lower threshold's credit later does not reach back.
			later, err := outageService(e, srv, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := later.SettleOutages(ctx); err != nil || n != 0 {
				t.Fatalf("a settled outage credited %d later (%v)", n, err)
			}
		})
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE kind = 'outage'`) + count(t, e.pool, `SELECT count(*) FROM river_job WHERE kind = 'outage_credited'`); n != 0 {
		t.Errorf("%d outage ledger rows or messages, want none", n)
	}
}
