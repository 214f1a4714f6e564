package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/jobs"
	"wgbot/postgres"
	"wgbot/service"
	"wgbot/wireguard/wgtest"
)

// quotaNotifier records the quota notices and top-up confirmations the
// job queue sends.
type quotaNotifier struct {
	quietNotifier
	mu     sync.Mutex
	levels map[int]int
	topUps []int64
}

func (n *quotaNotifier) QuotaReached(_ context.Context, _ wgbot.User, _ wgbot.Quota, level int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.levels[level]++
	return nil
}

func (n *quotaNotifier) TopUpCredited(_ context.Context, _ wgbot.User, bytes int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.topUps = append(n.topUps, bytes)
	return nil
}

func (n *quotaNotifier) sent() (map[int]int, []int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return map[int]int{wgbot.QuotaWarn: n.levels[wgbot.QuotaWarn], wgbot.QuotaFull: n.levels[wgbot.QuotaFull]}, append([]int64(nil), n.topUps...)
}

// bigPings sends count pings of 8000 bytes (about 16 kB counted per ping,
// both ways); an error when any went unanswered.
func (w *world) bigPings(count int) error {
	_, err := wgtest.ExecErr(w.cliNS, "ping", "-q", "-c", fmt.Sprint(count), "-i", "0.01", "-s", "8000", "-W", "2", "10.77.0.1")
	return err
}

// The acceptance test of issue 19's quotas, with the job queue running as
// in `wgbot serve` and the device collected: a plan with 2 MB a month;
// traffic past 80% brings one notice, past 100% another and the device
// comes off the interface and wg0.conf (the ping stops) while its row
// keeps its key and address; a top-up bought with a payment brings it
// back with the same address (the ping works again), and neither notice
// goes out twice.
func TestQuotaStopsAndTopUpRestores(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	outbox, err := jobs.NewOutbox(w.pool, log)
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewStore(w.pool, postgres.Options{LockID: 720301}, outbox)
	plans := []wgbot.Plan{
		{Name: "capped", Days: 30, Devices: 1, TrafficGB: 0.002, Prices: map[string]int64{"XTR": 100}},
		{Name: "plus2", Kind: wgbot.PlanTopUp, TopUpGB: 0.002, Prices: map[string]int64{"XTR": 20}},
	}
	svc := service.New(store, w.keys, w.rec, service.Config{Server: w.srv, Plans: plans, TrialDays: 3,
		ClientRoutes: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/20")}, Keepalive: 25, ApplyWait: 5 * time.Second}, nil, log)
	notifier := &quotaNotifier{levels: map[int]int{}}
	client, err := jobs.New(w.pool, jobs.Config{QuotaEvery: 200 * time.Millisecond}, jobs.Deps{Service: svc, Notifier: notifier, Log: log})
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
	pay := func(user wgbot.User, plan, charge string) service.CreditResult {
		t.Helper()
		o, err := svc.CreateOrder(ctx, user, plan, "stars", "XTR")
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: charge, OrderID: o.ID, Amount: o.Amount, Currency: "XTR"})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	user := w.user(t, 1)
	res := pay(user, "capped", "charge-plan")
	if res.Delivery == nil {
		t.Fatal("the payment issued no device")
	}
	d := *res.Delivery
	key := keyOf(t, d.Peer.PublicKey)
	wgtest.QuickUp(t, w.cliNS, w.cliIf, string(d.Config))
	c := collect(t, w, d.Peer.ID)
	quota := func() wgbot.Quota {
		q, err := svc.Quota(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}

	// About 1.7 MB: past 80%, not 100%.
	for quota().Used < 1_650_000 {
		if err := w.bigPings(20); err != nil {
			t.Fatalf("under the quota (%+v): %v", quota(), err)
		}
		c.settled(t)
	}
	if q := quota(); q.Level() != wgbot.QuotaWarn {
		t.Fatalf("quota %+v: want past 80%%, under 100%%", q)
	}
	eventually(t, 15*time.Second, "the 80% notice", func() bool { n, _ := notifier.sent(); return n[wgbot.QuotaWarn] == 1 })
	if err := w.bigPings(2); err != nil {
		t.Fatalf("at 80%% the device works still: %v", err)
	}

	// Past 100%: the next check switches the device off; the ping stops.
	for quota().Used < 2_000_000 {
		_ = w.bigPings(20)
		c.settled(t)
	}
	eventually(t, 15*time.Second, "the device off the interface", func() bool {
		_, on := w.devicePeers(t)[key]
		return !on
	})
	if err := w.ping(2); err == nil {
		t.Fatal("the ping still works with the quota used up")
	}
	for _, p := range w.fileManaged(t) {
		if p.PublicKey == d.Peer.PublicKey {
			t.Fatal("wg0.conf still has the device with the quota used up")
		}
	}
	peers, err := svc.Devices(ctx, user)
	if err != nil || len(peers) != 1 || peers[0].Status != wgbot.PeerDisabled || peers[0].IP != d.Peer.IP || peers[0].PublicKey != d.Peer.PublicKey {
		t.Fatalf("the device with the quota used up: %+v, %v; want it kept, disabled, at %s", peers, err, d.Peer.IP)
	}
	eventually(t, 15*time.Second, "the 100% notice", func() bool { n, _ := notifier.sent(); return n[wgbot.QuotaFull] == 1 })

	// A top-up: the device is back on the interface with its address, and
	// tunnels again (the client's next handshake finds it).
	top := pay(user, "plus2", "charge-topup")
	if top.TopUp != 2_000_000 {
		t.Fatalf("top-up: %+v", top.CreditResult)
	}
	eventually(t, 10*time.Second, "the device back on the interface", func() bool {
		p, on := w.devicePeers(t)[key]
		return on && len(p.AllowedIPs) > 0 && p.AllowedIPs[0].IP.String() == d.Peer.IP.String()
	})
	eventually(t, 40*time.Second, "the ping through the restored device", func() bool { return w.ping(1) == nil })
	managed := false
	for _, p := range w.fileManaged(t) {
		managed = managed || p.PublicKey == d.Peer.PublicKey
	}
	if !managed {
		t.Fatal("wg0.conf lacks the device after the top-up")
	}
	eventually(t, 15*time.Second, "the top-up's confirmation", func() bool { _, tops := notifier.sent(); return len(tops) == 1 })

	// Several more checks: nothing is told twice, the device stays on.
	time.Sleep(6 * time.Second)
	if n, tops := notifier.sent(); n[wgbot.QuotaWarn] != 1 || n[wgbot.QuotaFull] != 1 || len(tops) != 1 {
		t.Fatalf("notices sent: %v, top-ups told %v; want one of each", n, tops)
	}
	if _, on := w.devicePeers(t)[key]; !on {
		t.Fatal("the device went off again under the topped-up allowance")
	}
}
