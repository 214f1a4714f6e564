package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/jobs"
	"wgbot/postgres"
	"wgbot/service"
	"wgbot/traffic"
	"wgbot/wireguard/wgtest"
)

// The sizes of the test's pings: an ICMP echo of pingPayload bytes is
// pingPayload+28 bytes of IP packet; WireGuard pads it to 16 and adds its
// 32-byte transport header.
const (
	pingPayload = 1000
	pingIP      = pingPayload + 28
	pingWire    = (pingIP+15)/16*16 + 32
)

// collecting runs a traffic collector on the world's device every 200 ms,
// as `wgbot serve` in device mode does, and checks after every collection
// that the device's month totals never went backwards.
type collecting struct {
	w      *world
	peerID int64
	mu     sync.Mutex
	last   wgbot.Usage
	errs   []string
	done   chan struct{}
	cancel context.CancelFunc
}

func collect(t *testing.T, w *world, peerID int64) *collecting {
	ctx, cancel := context.WithCancel(context.Background())
	c := &collecting{w: w, peerID: peerID, done: make(chan struct{}), cancel: cancel}
	col := traffic.New(w.wg, w.store, traffic.Config{ServerID: w.srv.ID, Interface: w.srvIf, Interval: 200 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() {
		defer close(c.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			col.Collect(ctx) // fails while the interface is down, as in production
			c.check(ctx)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		c.cancel()
		<-c.done
		for _, e := range c.errs {
			t.Error(e)
		}
	})
	return c
}

func (c *collecting) check(ctx context.Context) {
	got, err := c.w.store.PeerUsage(ctx, time.Now(), []int64{c.peerID})
	if err != nil {
		return
	}
	u := got[c.peerID]
	c.mu.Lock()
	defer c.mu.Unlock()
	if u.Received < c.last.Received || u.Transmitted < c.last.Transmitted {
		c.errs = append(c.errs, fmt.Sprintf("month totals went backwards: %+v → %+v", c.last, u))
	}
	c.last = u
}

func (c *collecting) usage() wgbot.Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// settled waits until the stored totals stop moving (the tunnel is idle
// and a collection has caught up) and returns them.
func (c *collecting) settled(t *testing.T) wgbot.Usage {
	t.Helper()
	prev := c.usage()
	for deadline := time.Now().Add(20 * time.Second); ; {
		time.Sleep(700 * time.Millisecond)
		now := c.usage()
		if now == prev && now.Received > 0 {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never settled: %+v", now)
		}
		prev = now
	}
}

func (w *world) pingSized(t *testing.T, count int) {
	t.Helper()
	if _, err := wgtest.ExecErr(w.cliNS, "ping", "-c", fmt.Sprint(count), "-i", "0.02", "-s", fmt.Sprint(pingPayload), "-W", "2", "10.77.0.1"); err != nil {
		t.Fatalf("ping %d × %d bytes: %v", count, pingPayload, err)
	}
}

// A client pushes a known number of bytes through the tunnel; the month
// totals stored for its device grow by that much, within WireGuard's own
// overhead (padding, its header, a keepalive or handshake on the way).
func TestTrafficCounting(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	d, err := w.svc.IssueTrial(ctx, w.user(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, w, d.Peer.ID)
	var seen wgbot.Usage
	eventually(t, 5*time.Second, "a collection records the new device", func() bool {
		got, err := w.store.PeerUsage(ctx, time.Now(), []int64{d.Peer.ID})
		u, ok := got[d.Peer.ID]
		seen = u
		return err == nil && ok
	})
	if seen != (wgbot.Usage{}) {
		t.Fatalf("a device that never connected: %+v, want no traffic and no handshake", seen)
	}
	wgtest.QuickUp(t, w.cliNS, w.cliIf, string(d.Config))
	w.pingSized(t, 2)
	before := c.settled(t)
	if before.LastSeen.IsZero() || time.Since(before.LastSeen) > time.Minute {
		t.Fatalf("no recent handshake recorded: %+v", before)
	}
	const n = 200
	w.pingSized(t, n)
	after := c.settled(t)
	for _, dir := range []struct {
		name          string
		before, after int64
	}{{"received", before.Received, after.Received}, {"transmitted", before.Transmitted, after.Transmitted}} {
		grew := dir.after - dir.before
		if grew < n*pingIP || grew > n*pingWire+2048 {
			t.Errorf("%s grew by %d bytes for %d pings of %d bytes: want %d..%d", dir.name, grew, n, pingPayload, n*pingIP, n*pingWire+2048)
		}
		t.Logf("%s: %d bytes for %d × %d-byte IP packets (%d on the wire)", dir.name, grew, n, pingIP, n*pingWire)
	}
	// The stored totals are the device's counters: collection began when
	// they were zero.
	p := w.devicePeers(t)[keyOf(t, d.Peer.PublicKey)]
	if !near(after.Received, p.ReceiveBytes) || !near(after.Transmitted, p.TransmitBytes) {
		t.Errorf("stored %+v, device counters rx %d tx %d", after, p.ReceiveBytes, p.TransmitBytes)
	}
}

// The interface restarts mid-month (its counters start again from zero):
// the month totals keep counting up, never back, and count the traffic
// after the restart on top of what came before.
func TestTrafficCounterReset(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	d, err := w.svc.IssueTrial(ctx, w.user(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	wgtest.QuickUp(t, w.cliNS, w.cliIf, string(d.Config))
	c := collect(t, w, d.Peer.ID)
	w.pingSized(t, 100)
	first := c.settled(t)

	// Restart: wireguard-go stops (the interface and its peers vanish),
	// starts again, the operator's wg-quick brings it up, the reconciler's
	// resync puts the peers back.
	w.stopServerWG()
	wgtest.StartWireGuardGo(t, w.srvNS, w.srvIf)
	w.serverUp(t)
	eventually(t, 3*w.resyncInterval+5*time.Second, "the resync restores the peer", func() bool {
		_, ok := w.devicePeers(t)[keyOf(t, d.Peer.PublicKey)]
		return ok
	})
	// The client starts a fresh session at once (its old one is dead).
	q, err := wgtest.ParseQuick(string(d.Config))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "client.conf")
	if err := os.WriteFile(conf, []byte(q.WG), 0o600); err != nil {
		t.Fatal(err)
	}
	wgtest.Exec(t, w.cliNS, "wg", "setconf", w.cliIf, conf)
	const n = 50
	w.pingSized(t, n)
	second := c.settled(t)
	p := w.devicePeers(t)[keyOf(t, d.Peer.PublicKey)]
	if p.ReceiveBytes >= first.Received {
		t.Fatalf("the restart did not reset the device's counters: rx %d, stored before %d", p.ReceiveBytes, first.Received)
	}
	if grew := second.Received - first.Received; grew < n*pingIP || !near(grew, p.ReceiveBytes) {
		t.Errorf("after the restart the total grew by %d, want the device's new counter %d (≥ %d)", grew, p.ReceiveBytes, n*pingIP)
	}
	if grew := second.Transmitted - first.Transmitted; grew < n*pingIP || !near(grew, p.TransmitBytes) {
		t.Errorf("after the restart sent grew by %d, want the device's new counter %d (≥ %d)", grew, p.TransmitBytes, n*pingIP)
	}
}

// near: the stored total is the device's counter, give or take a
// keepalive (32 bytes) that arrived after the last collection.
func near(stored, device int64) bool { return device >= stored && device-stored <= 64 }

// tipNotifier records the connection tips the job queue sends.
type tipNotifier struct {
	quietNotifier
	mu   sync.Mutex
	tips map[int64]int // by peer id
}

func (n *tipNotifier) ConnectionTip(_ context.Context, _ wgbot.User, device wgbot.Peer) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tips[device.ID]++
	return nil
}

func (n *tipNotifier) count() map[int64]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.tips)
}

// The connection check, with the job queue running as in `wgbot serve`
// and the device collected: of two devices delivered 16 minutes ago, the
// one that never connected gets the tip, once however often the check
// runs; the one that connected gets none.
func TestConnectionCheck(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	connects, err := w.svc.IssueTrial(ctx, w.user(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	silent, err := w.svc.IssueTrial(ctx, w.user(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []int64{connects.Peer.ID, silent.Peer.ID} {
		if err := w.store.MarkDelivered(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	wgtest.QuickUp(t, w.cliNS, w.cliIf, string(connects.Config))
	c := collect(t, w, connects.Peer.ID)
	w.pingSized(t, 2)
	if u := c.settled(t); u.LastSeen.IsZero() {
		t.Fatal("the connected device has no handshake recorded")
	}
	// Delivered 16 minutes ago, as far as the check can tell.
	if _, err := w.pool.Exec(ctx, `UPDATE peers SET delivered_at = delivered_at - interval '16 minutes'`); err != nil {
		t.Fatal(err)
	}

	outbox, err := jobs.NewOutbox(w.pool, log)
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(w.pool, postgres.Options{LockID: 720301}, outbox)
	svc := service.New(store, w.keys, w.rec, service.Config{Server: w.srv, Plans: service.DefaultPlans(), TrialDays: 3}, nil, log)
	notifier := &tipNotifier{tips: map[int64]int{}}
	client, err := jobs.New(w.pool, jobs.Config{ConnectionEvery: 200 * time.Millisecond}, jobs.Deps{Service: svc, Notifier: notifier, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client.Stop(stop)
	})
	eventually(t, 10*time.Second, "the silent device's tip", func() bool { return notifier.count()[silent.Peer.ID] > 0 })
	time.Sleep(2 * time.Second) // ten more runs of the check
	if got := notifier.count(); got[silent.Peer.ID] != 1 || got[connects.Peer.ID] != 0 {
		t.Fatalf("tips by device %v: want one for the silent device %d, none for the connected %d", got, silent.Peer.ID, connects.Peer.ID)
	}
	var unchecked int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM peers WHERE connection_checked_at IS NULL`).Scan(&unchecked); err != nil || unchecked != 0 {
		t.Fatalf("%d devices left unchecked (%v): both were judged", unchecked, err)
	}
}
