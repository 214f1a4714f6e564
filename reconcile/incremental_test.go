package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/reconcile"
	"wgbot/service"
	"wgbot/wireguard/wgconf"
)

// issue gives n new users a trial each, in turn.
func (w *world) issue(t *testing.T, from int64, n int) []wgbot.Peer {
	t.Helper()
	var peers []wgbot.Peer
	for i := range int64(n) {
		d, err := w.svc.IssueTrial(context.Background(), w.user(t, from+i))
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, d.Peer)
	}
	return peers
}

// The hot path reads the change log and the changed peers only: an
// issuance among 300 peers reads a handful of rows, not 300.
func TestIssuanceReadsOnlyChangedRows(t *testing.T) {
	w := newWorldResync(t, time.Hour)
	w.issue(t, 1000, 300)
	before := w.rec.RowsRead()
	p := w.issue(t, 5000, 1)[0]
	if n := w.rec.RowsRead() - before; n > 4 {
		t.Fatalf("one issuance among 300 peers read %d rows; want the change-log row and the peer", n)
	}
	if _, ok := w.devicePeers(t)[keyOf(t, p.PublicKey)]; !ok {
		t.Fatal("the new peer is not on the device")
	}
	// wg0.conf is written right after the device is updated.
	eventually(t, 5*time.Second, "301 managed peers in wg0.conf", func() bool { return len(w.fileManaged(t)) == 301 })
}

// serve reconciles in full before it takes requests and then runs the
// loop, whose first pass catches up from that reconcile: it reads no peer
// again (a second full pass at 50,000 peers held the peers twice).
func TestRunAfterStartUpReconcileReadsNoPeerAgain(t *testing.T) {
	w := newWorldResync(t, time.Hour)
	w.issue(t, 1000, 30)
	w.stop()
	rec := w.newReconciler(t, w.url)
	if _, err := rec.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	read := rec.RowsRead()
	if read < 30 {
		t.Fatalf("the start-up reconcile read %d rows, want the 30 peers", read)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, 5*time.Second, "the loop's first pass", func() bool {
		n, _ := rec.Counts()
		return n >= 2
	})
	if n := rec.RowsRead() - read; n != 0 {
		t.Errorf("the loop's first pass read %d rows again", n)
	}
}

// wg0.conf is rendered from memory only while it is the file wgbot wrote:
// a hand edit between two issuances is parsed again and kept.
func TestHandEditBetweenIssuancesKept(t *testing.T) {
	w := newWorldResync(t, time.Hour)
	a := w.issue(t, 1, 1)[0]
	w.waitFileHas(t, a.ID)
	k, _ := wgtypes.GeneratePrivateKey()
	edit := fmt.Sprintf("\n# added by hand between two issuances\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.77.0.251/32\n", k.PublicKey())
	f, err := os.OpenFile(w.confPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(edit); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b := w.issue(t, 2, 1)[0]
	w.waitFileHas(t, b.ID)
	raw, _ := os.ReadFile(w.confPath)
	if !strings.Contains(string(raw), "# added by hand between two issuances") || !strings.Contains(string(raw), k.PublicKey().String()) {
		t.Fatalf("the hand edit is lost:\n%s", raw)
	}
	ids := map[string]bool{}
	for _, p := range w.fileManaged(t) {
		ids[p.ID] = true
	}
	if !ids[fmt.Sprint(a.ID)] || !ids[fmt.Sprint(b.ID)] {
		t.Fatalf("managed peers %v lack %d or %d", ids, a.ID, b.ID)
	}
	if _, ok := w.devicePeers(t)[k.PublicKey()]; !ok {
		t.Fatal("the hand-made peer added between issuances is not on the device")
	}
}

// The hot path never reads the device: drift there (a stray peer, a
// managed peer removed by hand) survives an issuance and is repaired by
// the full resync.
func TestDeviceDriftRepairedByResync(t *testing.T) {
	w := newWorldResync(t, time.Hour)
	a := w.issue(t, 1, 1)[0]
	stray, _ := wgtypes.GeneratePrivateKey()
	if err := w.wg.ConfigureDevice(w.srvIf, wgtypes.Config{Peers: []wgtypes.PeerConfig{
		{PublicKey: stray.PublicKey()},
		{PublicKey: keyOf(t, a.PublicKey), Remove: true},
	}}); err != nil {
		t.Fatal(err)
	}
	b := w.issue(t, 2, 1)[0]
	dev := w.devicePeers(t)
	if _, ok := dev[keyOf(t, b.PublicKey)]; !ok {
		t.Fatal("the new peer is not on the device")
	}
	if _, ok := dev[stray.PublicKey()]; !ok {
		t.Fatal("an issuance read and repaired the whole device; the hot path must touch only the changed peer")
	}
	if _, err := w.rec.Reconcile(context.Background()); err != nil { // what WG_RESYNC_INTERVAL runs
		t.Fatal(err)
	}
	dev = w.devicePeers(t)
	if _, ok := dev[stray.PublicKey()]; ok {
		t.Fatal("the resync left the stray peer on the device")
	}
	if _, ok := dev[keyOf(t, a.PublicKey)]; !ok {
		t.Fatal("the resync did not put back the peer removed by hand")
	}
}

// A revoke on the hot path removes the peer from the device and the file.
func TestIncrementalRevoke(t *testing.T) {
	w := newWorldResync(t, time.Hour)
	u := w.user(t, 7)
	d, err := w.svc.IssueTrial(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	w.issue(t, 8, 2)
	if err := w.svc.Revoke(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	ch, err := w.store.Revision(context.Background(), w.srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.rec.Apply(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.devicePeers(t)[keyOf(t, d.Peer.PublicKey)]; ok {
		t.Fatal("the revoked peer is still on the device")
	}
	eventually(t, 5*time.Second, "the revoked peer gone from wg0.conf", func() bool {
		for _, p := range w.fileManaged(t) {
			if p.ID == fmt.Sprint(d.Peer.ID) {
				return false
			}
		}
		return true
	})
}

func (w *world) waitFileHas(t *testing.T, id int64) {
	t.Helper()
	eventually(t, 5*time.Second, fmt.Sprintf("peer %d in wg0.conf", id), func() bool {
		for _, p := range w.fileManaged(t) {
			if p.ID == fmt.Sprint(id) {
				return true
			}
		}
		return false
	})
}

// Two reconcilers on one host (two serve processes' worth: each its own
// model, cache and LISTEN connection) under a burst from both, revokes
// included, end equal to the database: each notices the other's writes
// to wg0.conf and reconciles in full rather than render its older model.
func TestTwoReconcilersBurstEndEqual(t *testing.T) {
	w := newWorldResync(t, time.Hour)
	ctx := context.Background()
	url := w.pool.Config().ConnString()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec2, err := reconcile.New(w.store, w.keys, w.wg, reconcile.Config{
		ServerID: w.srv.ID, Interface: w.srvIf, Mode: reconcile.ModeDevice,
		File: wgconf.Config{Path: w.confPath}, ResyncInterval: time.Hour,
	}, func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }, log)
	if err != nil {
		t.Fatal(err)
	}
	svc2 := service.New(w.store, w.keys, rec2, service.Config{
		Server: w.srv, Plans: service.DefaultPlans(), TrialDays: 3,
		ClientRoutes: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/20")}, Keepalive: 25, ApplyWait: 5 * time.Second,
	}, nil, log)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); rec2.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	users := make([]wgbot.User, 80)
	for i := range users {
		users[i] = w.user(t, int64(3000+i))
	}
	var wg sync.WaitGroup
	for i, u := range users {
		svc := w.svc
		if i%2 == 1 {
			svc = svc2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.IssueTrial(ctx, u); err != nil {
				t.Error(err)
				return
			}
			if i%5 == 0 {
				if err := svc.Revoke(ctx, u); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var keys []string
	rows, err := w.pool.Query(ctx, `SELECT public_key FROM peers WHERE server_id = $1 AND status = 'active' ORDER BY public_key`, w.srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 64 {
		t.Fatalf("%d active peers in the database, want 64", len(keys))
	}
	eventually(t, 10*time.Second, "wg0.conf and the device equal to the database", func() bool {
		var file []string
		for _, p := range w.fileManaged(t) {
			file = append(file, p.PublicKey)
		}
		slices.Sort(file)
		var dev []string
		for k := range w.devicePeers(t) {
			if k != w.handMadeKey {
				dev = append(dev, k.String())
			}
		}
		slices.Sort(dev)
		return slices.Equal(file, keys) && slices.Equal(dev, keys)
	})
}
