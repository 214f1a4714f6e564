package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/jobs"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgconf"
	"wgbot/wireguard/wgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	pgtest.Main(m)
}

const handMade = `[Interface]
# the operator's own setup, kept byte for byte
Address = 10.77.0.1/20
ListenPort = 51820
PrivateKey = %s
PostUp = iptables -A FORWARD -i %%i -j ACCEPT

# a router the operator added by hand
[Peer]
PublicKey = %s
AllowedIPs = 10.77.0.250/32
`

// world is a server namespace running wireguard-go, a client namespace
// wired to it, and wgbot (service + reconciler) on a fresh database.
type world struct {
	srvNS, cliNS   string
	srvIf, cliIf   string
	wg             *device.Control
	pool           *pgxpool.Pool
	store          *postgres.Store
	keys           *secret.Keyring
	svc            *service.Service
	rec            *reconcile.Reconciler
	confPath       string
	handMadeKey    wgtypes.Key
	serverPublic   wgtypes.Key
	serverPrivate  wgtypes.Key
	stopServerWG   func() // stops the server's wireguard-go: the interface vanishes
	cancel         context.CancelFunc
	stopped        chan struct{}
	srv            wgbot.Server
	resyncInterval time.Duration
	url            string
}

func newWorld(t *testing.T) *world { return newWorldResync(t, time.Second) }

func newWorldResync(t *testing.T, resync time.Duration) *world {
	wgtest.RequireTools(t)
	w := &world{resyncInterval: resync}
	var err error
	if w.wg, err = device.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.wg.Close() })
	w.srvNS, w.cliNS = wgtest.Netns(t, "srv"), wgtest.Netns(t, "cli")
	wgtest.Veth(t, w.srvNS, netip.MustParsePrefix("198.18.0.1/30"), w.cliNS, netip.MustParsePrefix("198.18.0.2/30"))
	w.srvIf, w.cliIf = wgtest.UniqueName(t, "wgs"), wgtest.UniqueName(t, "wgc")
	w.stopServerWG = wgtest.RunWireGuardGo(t, w.srvNS, w.srvIf)
	wgtest.StartWireGuardGo(t, w.cliNS, w.cliIf)

	priv, _ := wgtypes.GeneratePrivateKey()
	w.serverPrivate, w.serverPublic = priv, priv.PublicKey()
	hand, _ := wgtypes.GeneratePrivateKey()
	w.handMadeKey = hand.PublicKey()
	w.confPath = filepath.Join(t.TempDir(), w.srvIf+".conf")
	if err := os.WriteFile(w.confPath, []byte(fmt.Sprintf(handMade, priv, w.handMadeKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	w.serverUp(t)

	url := pgtest.URL(t)
	w.url = url
	if w.pool, err = pgxpool.New(context.Background(), url+"&pool_max_conns=10"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.pool.Close)
	w.store = postgres.NewStore(w.pool, postgres.Options{LockID: 720301}, nil)
	w.srv, err = w.store.EnsureServer(context.Background(), wgbot.Server{
		Name: "main", Interface: w.srvIf, Endpoint: "198.18.0.1:51820", Subnet: netip.MustParsePrefix("10.77.0.0/20"),
		Address: netip.MustParseAddr("10.77.0.1"), PublicKey: w.serverPublic.String(), MTU: 1420,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.keys, _ = secret.NewKeyring(bytes.Repeat([]byte{3}, 32))
	w.start(t, url)
	return w
}

// serverUp brings the server's interface up as the operator would from
// the file, with wg-quick: key, port, address, link.
func (w *world) serverUp(t *testing.T) {
	port := 51820
	if err := w.wg.ConfigureDevice(w.srvIf, wgtypes.Config{PrivateKey: &w.serverPrivate, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	wgtest.Exec(t, w.srvNS, "ip", "address", "add", "10.77.0.1/20", "dev", w.srvIf)
	wgtest.Exec(t, w.srvNS, "ip", "link", "set", w.srvIf, "up")
}

// newReconciler is the world's reconciler, not started.
func (w *world) newReconciler(t *testing.T, url string) *reconcile.Reconciler {
	rec, err := reconcile.New(w.store, w.keys, w.wg, reconcile.Config{
		ServerID: w.srv.ID, Interface: w.srvIf, Mode: reconcile.ModeDevice,
		File: wgconf.Config{Path: w.confPath}, ResyncInterval: w.resyncInterval,
	}, func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// start runs a reconciler (as `wgbot serve` would) until stop.
func (w *world) start(t *testing.T, url string) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w.rec = w.newReconciler(t, url)
	w.svc = service.New(w.store, w.keys, w.rec, service.Config{
		Server: w.srv, Plans: service.DefaultPlans(), TrialDays: 3,
		ClientRoutes: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/20")}, Keepalive: 25, ApplyWait: 5 * time.Second,
	}, nil, log)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.stopped = cancel, make(chan struct{})
	go func() {
		defer close(w.stopped)
		w.rec.Run(ctx)
	}()
	t.Cleanup(w.stop)
	eventually(t, 5*time.Second, "the start-up reconcile", func() bool {
		n, _ := w.rec.Counts()
		return n > 0
	})
}

func (w *world) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.stopped
		w.cancel = nil
	}
}

func (w *world) user(t *testing.T, tg int64) wgbot.User {
	u, err := w.svc.Register(context.Background(), wgbot.User{TelegramID: tg}, "")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (w *world) devicePeers(t *testing.T) map[wgtypes.Key]wgtypes.Peer {
	d, err := w.wg.Device(w.srvIf)
	if err != nil {
		t.Fatal(err)
	}
	out := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range d.Peers {
		out[p.PublicKey] = p
	}
	return out
}

func (w *world) fileManaged(t *testing.T) []wgconf.Peer {
	raw, err := os.ReadFile(w.confPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wgconf.Parse(raw)
	if err != nil {
		t.Fatalf("wg0.conf does not parse: %v", err)
	}
	return f.ManagedPeers()
}

func (w *world) ping(count int) error {
	_, err := wgtest.ExecErr(w.cliNS, "ping", "-c", fmt.Sprint(count), "-W", "2", "10.77.0.1")
	return err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keyOf(t *testing.T, s string) wgtypes.Key {
	k, err := wgtypes.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	alice := w.user(t, 1)
	d, err := w.svc.IssueTrial(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	// The issued .conf, byte for byte, on the client.
	wgtest.QuickUp(t, w.cliNS, w.cliIf, string(d.Config))
	if err := w.ping(2); err != nil {
		t.Fatalf("ping through the issued config: %v", err)
	}
	alicePub := keyOf(t, d.Peer.PublicKey)
	if p, ok := w.devicePeers(t)[alicePub]; !ok || p.LastHandshakeTime.IsZero() {
		t.Fatal("no handshake with the issued peer on the server")
	}
	if out := wgtest.Exec(t, w.srvNS, "wg", "show", w.srvIf, "latest-handshakes"); !strings.Contains(out, d.Peer.PublicKey) {
		t.Fatalf("wg show lacks the peer:\n%s", out)
	}
	if _, ok := w.devicePeers(t)[w.handMadeKey]; !ok {
		t.Fatal("the hand-made peer of wg0.conf is not on the device")
	}

	t.Run("churn of 50 peers keeps the session", func(t *testing.T) {
		// Let the session settle: a handshake whose response crossed the
		// client's own first initiation is retried after REKEY_TIMEOUT (5 s),
		// later on a loaded machine (-race): wait until a handshake has
		// stood for longer than that.
		if err := w.ping(1); err != nil {
			t.Fatal(err)
		}
		before := w.devicePeers(t)[alicePub]
		for deadline := time.Now().Add(45 * time.Second); ; {
			time.Sleep(6 * time.Second)
			if err := w.ping(1); err != nil {
				t.Fatal(err)
			}
			now := w.devicePeers(t)[alicePub]
			if now.LastHandshakeTime.Equal(before.LastHandshakeTime) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the session never settled: last handshake %v", now.LastHandshakeTime)
			}
			before = now
		}
		pinged := make(chan string, 1)
		go func() {
			out, _ := wgtest.ExecErr(w.cliNS, "ping", "-c", "80", "-i", "0.05", "-W", "2", "10.77.0.1")
			pinged <- out
		}()
		var users []wgbot.User
		for i := range 50 {
			u := w.user(t, int64(100+i))
			if _, err := w.svc.IssueTrial(ctx, u); err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		for _, u := range users {
			if err := w.svc.Revoke(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		out := <-pinged
		if !strings.Contains(out, "80 packets transmitted, 80 received") && !strings.Contains(out, "80 packets transmitted, 79 received") {
			t.Fatalf("pings lost during churn:\n%s", out)
		}
		after := w.devicePeers(t)[alicePub]
		if !after.LastHandshakeTime.Equal(before.LastHandshakeTime) && after.LastHandshakeTime.Sub(before.LastHandshakeTime) < 100*time.Second {
			t.Fatalf("handshake reset by churn: %v → %v", before.LastHandshakeTime, after.LastHandshakeTime)
		}
		if after.ReceiveBytes < before.ReceiveBytes {
			t.Fatal("counters reset: the peer was re-created")
		}
	})

	t.Run("drift repair", func(t *testing.T) {
		wgtest.Exec(t, w.srvNS, "wg", "set", w.srvIf, "peer", d.Peer.PublicKey, "remove")
		stray, _ := wgtypes.GeneratePrivateKey()
		wgtest.Exec(t, w.srvNS, "wg", "set", w.srvIf, "peer", stray.PublicKey().String(), "allowed-ips", "10.77.0.240/32")
		eventually(t, 3*w.resyncInterval+2*time.Second, "resync restores the removed peer and drops the stray one", func() bool {
			peers := w.devicePeers(t)
			_, back := peers[alicePub]
			_, strayThere := peers[stray.PublicKey()]
			_, hand := peers[w.handMadeKey]
			return back && !strayThere && hand
		})
		raw, _ := os.ReadFile(w.confPath)
		if !strings.Contains(string(raw), "# a router the operator added by hand\n[Peer]\nPublicKey = "+w.handMadeKey.String()) ||
			!strings.Contains(string(raw), "PostUp = iptables -A FORWARD -i %i -j ACCEPT") {
			t.Fatalf("the hand-made part of wg0.conf changed:\n%s", raw)
		}
	})

	t.Run("revoke cuts the tunnel", func(t *testing.T) {
		if err := w.svc.Revoke(ctx, alice); err != nil {
			t.Fatal(err)
		}
		eventually(t, w.resyncInterval+2*time.Second, "peer gone from device and wg0.conf", func() bool {
			_, onDevice := w.devicePeers(t)[alicePub]
			return !onDevice && len(w.fileManaged(t)) == 0
		})
		if err := w.ping(1); err == nil {
			t.Fatal("ping still works after revoke")
		}
	})
}

func TestExpiryCutsTheTunnel(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	u := w.user(t, 2)
	d, err := w.svc.IssueTrial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	wgtest.QuickUp(t, w.cliNS, w.cliIf, string(d.Config))
	if err := w.ping(1); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `UPDATE subscriptions SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if expired, err := w.svc.ExpireDue(ctx); err != nil || len(expired) != 1 {
		t.Fatalf("ExpireDue: %v %v", expired, err)
	}
	eventually(t, w.resyncInterval+2*time.Second, "expired peer gone", func() bool {
		_, ok := w.devicePeers(t)[keyOf(t, d.Peer.PublicKey)]
		return !ok
	})
	if err := w.ping(1); err == nil {
		t.Fatal("ping still works after expiry")
	}
}

// A burst of 100 changes coalesces into a handful of file writes, and every
// caller's wait ends with its change applied.
func TestBurstCoalesces(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, writesBefore := w.rec.Counts()
	// Users are registered first: t.Fatal (in w.user) must not be called
	// from the goroutines, where it would not stop the test.
	users := make([]wgbot.User, 100)
	for i := range users {
		users[i] = w.user(t, int64(1000+i))
	}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.svc.IssueTrial(ctx, u); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	_, writes := w.rec.Counts()
	if n := writes - writesBefore; n > 40 {
		t.Fatalf("100 changes caused %d file writes", n)
	} else {
		t.Logf("100 changes, %d file writes", n)
	}
	// In device mode wg0.conf is written right after the device is
	// updated and the callers told (issue 15).
	eventually(t, 5*time.Second, "100 managed peers in wg0.conf", func() bool { return len(w.fileManaged(t)) == 100 })
	if got := len(w.devicePeers(t)); got != 101 {
		t.Fatalf("device has %d peers, want 100 + the hand-made one", got)
	}
}

// Forced apply failure: the trial is not burned, the next request succeeds
// at once, and no advisory lock is left.
func TestApplyFailureInjected(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	fail := true
	var mu sync.Mutex
	w.rec.FailHook = func() error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("injected: device refused the change")
		}
		return nil
	}
	u := w.user(t, 5)
	if _, err := w.svc.IssueTrial(ctx, u); !errors.Is(err, wgbot.ErrApplyFailed) {
		t.Fatalf("want ErrApplyFailed, got %v", err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	start := time.Now()
	d, err := w.svc.IssueTrial(ctx, u)
	if err != nil {
		t.Fatalf("retry after failure: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the next request took %v", took)
	}
	if _, ok := w.devicePeers(t)[keyOf(t, d.Peer.PublicKey)]; !ok {
		t.Fatal("peer not on the device after the successful retry")
	}
	var locks int
	w.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&locks)
	if locks != 0 {
		t.Fatalf("%d advisory locks held", locks)
	}
}

// Restart with 1,000 peers in the database and an empty device: one
// reconcile converges, the next changes nothing.
func TestRestartConverges(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.stop()
	// Issue while wgbot's reconciler is down (as if the host rebooted).
	offline := service.New(w.store, w.keys, nil, service.Config{Server: w.srv, TrialDays: 3}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u, err := offline.Register(ctx, wgbot.User{TelegramID: int64(5000 + i)}, "")
			if err == nil {
				_, err = offline.IssueTrial(ctx, u)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	res, err := w.rec.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Device.Added != 1000 || !res.FileChanged {
		t.Fatalf("first reconcile: %+v", res)
	}
	again, err := w.rec.Reconcile(ctx)
	if err != nil || again.FileChanged || again.Device.Added+again.Device.Removed+again.Device.Updated != 0 {
		t.Fatalf("second reconcile was not a no-op: %+v %v", again, err)
	}
	if n := len(w.devicePeers(t)); n != 1001 {
		t.Fatalf("device has %d peers; first reconcile %+v", n, res)
	}
}

type quietNotifier struct{}

func (quietNotifier) PaymentCredited(context.Context, wgbot.User, wgbot.Subscription, *service.Delivery) error {
	return nil
}
func (quietNotifier) SubscriptionExpired(context.Context, wgbot.User, wgbot.Subscription) error {
	return nil
}
func (quietNotifier) ExpiryReminder(context.Context, wgbot.User, wgbot.Subscription, int) error {
	return nil
}

// I7 end to end: with the job queue running as in `wgbot serve`, a trial
// stops tunnelling within a minute of its expiry.
func TestTrialExpiryStopsTunnel(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	client, err := jobs.New(w.pool, jobs.Config{ExpireEvery: 15 * time.Second},
		jobs.Deps{Service: w.svc, Notifier: quietNotifier{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	d, err := w.svc.IssueTrial(ctx, w.user(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	wgtest.QuickUp(t, w.cliNS, w.cliIf, string(d.Config))
	if err := w.ping(1); err != nil {
		t.Fatal(err)
	}
	// The trial's end is moved to a few seconds from now (a trial is whole
	// days long; the clock is what is tested here, not the calendar).
	var expiry time.Time
	if err := w.pool.QueryRow(ctx, `UPDATE subscriptions SET expires_at = now() + interval '3 seconds' RETURNING expires_at`).Scan(&expiry); err != nil {
		t.Fatal(err)
	}
	// Stopped means: the peer is off the device and pings fail. A single
	// lost ping while the peer is still there does not count.
	for {
		_, on := w.devicePeers(t)[keyOf(t, d.Peer.PublicKey)]
		if !on && w.ping(1) != nil {
			break
		}
		if time.Since(expiry) > time.Minute {
			t.Fatal("still tunnelling a minute after expiry")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if time.Now().Before(expiry) {
		t.Fatal("the tunnel stopped before the expiry")
	}
	var status string
	w.pool.QueryRow(ctx, `SELECT status FROM subscriptions`).Scan(&status)
	if status != wgbot.SubscriptionExpired {
		t.Fatalf("the peer left the device, but the subscription is %s", status)
	}
	t.Logf("tunnel stopped %v after expiry", time.Since(expiry).Round(100*time.Millisecond))
}
