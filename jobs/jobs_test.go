package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/jobs"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/service/servicetest"
	"wgbot/wireguard/wgconf"
)

const roleEnv = "WGBOT_JOBS_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) != "" {
		if err := runChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

// recorder is a Notifier that writes every notice to a table, so notices
// from several processes can be counted in one place.
type recorder struct{ pool *pgxpool.Pool }

func (r recorder) record(ctx context.Context, kind string, user wgbot.User, sub wgbot.Subscription, days int) error {
	_, err := r.pool.Exec(ctx, `INSERT INTO test_notices (kind, telegram_id, subscription_id, expires_at, days) VALUES ($1, $2, $3, $4, $5)`,
		kind, user.TelegramID, sub.ID, sub.ExpiresAt, days)
	return err
}

func (r recorder) PaymentCredited(ctx context.Context, u wgbot.User, s wgbot.Subscription, d *service.Delivery) error {
	return r.record(ctx, "payment", u, s, 0)
}

// DeviceIssued records a new device's config as "device:<reason>", with
// the device's public key.
func (r recorder) DeviceIssued(ctx context.Context, n service.DeviceNotice) error {
	_, err := r.pool.Exec(ctx, `INSERT INTO test_notices (kind, telegram_id, subscription_id, expires_at, days, peer) VALUES ($1, $2, $3, $4, $5, $6)`,
		"device:"+n.Reason, n.User.TelegramID, n.Delivery.Subscription.ID, n.Delivery.Subscription.ExpiresAt, n.Days, n.Delivery.Peer.PublicKey)
	return err
}

func (r recorder) SubscriptionExpired(ctx context.Context, u wgbot.User, s wgbot.Subscription) error {
	return r.record(ctx, "expired", u, s, 0)
}

func (r recorder) ExpiryReminder(ctx context.Context, u wgbot.User, s wgbot.Subscription, days int) error {
	return r.record(ctx, "reminder", u, s, days)
}

// node is one wgbot process's worth of parts: store, service, file-only
// reconciler and job client.
type node struct {
	pool  *pgxpool.Pool
	store *postgres.Store
	svc   *service.Service
	rec   *reconcile.Reconciler
	jobs  *river.Client[pgx.Tx]
}

var testKey = bytes.Repeat([]byte{9}, 32)

func newNode(ctx context.Context, url, confPath string, offset time.Duration) (*node, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := &node{}
	s, err := servicetest.Build(ctx, url+"&pool_max_conns=8", servicetest.Options{
		Server: wgbot.Server{Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820",
			Subnet: netip.MustParsePrefix("10.40.0.0/20"), Address: netip.MustParseAddr("10.40.0.1"), PublicKey: "srv"},
		Store: postgres.Options{ReminderDays: []int{3, 1}}, Jobs: true, Key: testKey, Log: log,
		NewApply: func(s *servicetest.Stack) (service.Provisioner, error) {
			if confPath == "" {
				return nil, nil
			}
			var err error
			n.rec, err = reconcile.New(s.Store, s.Keys, nil, reconcile.Config{ServerID: s.Server.ID, Mode: reconcile.ModeFile,
				File: wgconf.Config{Path: confPath}, ResyncInterval: time.Second}, nil, log)
			return n.rec, err
		},
		Now:    func() time.Time { return time.Now().Add(offset) },
		Config: service.Config{OutageCreditAfter: time.Minute},
	})
	if err != nil {
		return nil, err
	}
	n.pool, n.store, n.svc = s.Pool, s.Store, s.Service
	pool := s.Pool
	deps := jobs.Deps{Service: n.svc, Notifier: recorder{pool}, Devices: recorder{pool}, Log: log}
	if n.jobs, err = jobs.New(pool, jobs.Config{ExpireEvery: time.Second, RemindEvery: time.Second, SweepEvery: time.Hour,
		OutageEvery: time.Second}, deps); err != nil {
		return nil, err
	}
	return n, nil
}

// runChild is one `wgbot serve`-like process: jobs and a file-only
// reconciler, until SIGTERM.
func runChild() error {
	if os.Getenv("CHILD_ROLE") == "broadcast" {
		return runBroadcastChild()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	offset, _ := time.ParseDuration(os.Getenv("CHILD_CLOCK_OFFSET"))
	n, err := newNode(ctx, os.Getenv("CHILD_DB"), os.Getenv("CHILD_CONF"), offset)
	if err != nil {
		return err
	}
	defer n.pool.Close()
	go n.rec.Run(ctx)
	if err := n.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.jobs.Stop(stopCtx)
}

func startChildren(t *testing.T, n int, env ...string) []*exec.Cmd {
	var cmds []*exec.Cmd
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), roleEnv+"=1", "CHILD_INDEX="+strconv.Itoa(i)), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() && out.Len() > 0 {
				t.Logf("child %d:\n%s", i, out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	return cmds
}

func stopChildren(t *testing.T, cmds []*exec.Cmd) {
	for i, cmd := range cmds {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func setupDB(t *testing.T) (string, *pgxpool.Pool) {
	url := pgtest.URL(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	_, err = pool.Exec(context.Background(), `CREATE TABLE test_notices (kind text, telegram_id bigint, subscription_id bigint, expires_at timestamptz, days int, peer text)`)
	if err != nil {
		t.Fatal(err)
	}
	return url, pool
}

// Two processes, 1,000 subscriptions expiring within the same minute:
// one reminder and one expiry message per user, each subscription expired
// once, and no peer left in wg0.conf.
func TestThousandExpiriesAcrossTwoProcesses(t *testing.T) {
	ctx := context.Background()
	url, pool := setupDB(t)
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	priv, _ := wgtypes.GeneratePrivateKey()
	os.WriteFile(conf, []byte("[Interface]\nAddress = 10.40.0.1/20\nListenPort = 51820\nPrivateKey = "+priv.String()+"\n"), 0o600)

	// Issue as of a clock one day behind, so "1 day before expiry" is a few
	// seconds from now for real and expiry is a day ahead.
	setup, err := newNode(ctx, url, "", -24*time.Hour+5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.pool.Close()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			u, err := setup.svc.Register(ctx, wgbot.User{TelegramID: int64(10_000 + i)}, "")
			if err == nil {
				_, _, err = setup.svc.Grant(ctx, u, 2, 1)
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
	// Phase 1: real time. The 1-day reminders fall due in seconds; nothing expires.
	children := startChildren(t, 2, "CHILD_DB="+url, "CHILD_CONF="+conf, "CHILD_CLOCK_OFFSET=0s")
	waitFor(t, 60*time.Second, "1000 reminders", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'reminder'`) >= 1000
	})
	f, _ := wgconf.Parse(mustRead(t, conf))
	if got := len(f.ManagedPeers()); got != 1000 {
		t.Fatalf("wg0.conf has %d managed peers before expiry, want 1000", got)
	}
	stopChildren(t, children)

	// Phase 2: the processes' clock is past every expiry.
	children = startChildren(t, 2, "CHILD_DB="+url, "CHILD_CONF="+conf, "CHILD_CLOCK_OFFSET=49h")
	waitFor(t, 60*time.Second, "1000 expiry messages and an empty wg0.conf", func() bool {
		f, err := wgconf.Parse(mustRead(t, conf))
		return err == nil && len(f.ManagedPeers()) == 0 &&
			count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'expired'`) >= 1000
	})
	time.Sleep(2 * time.Second) // room for a duplicate to show up, if there were one
	stopChildren(t, children)

	if n := count(t, pool, `SELECT count(*) FROM subscriptions WHERE status = 'expired'`); n != 1000 {
		t.Fatalf("%d subscriptions expired, want 1000", n)
	}
	for _, kind := range []string{"expired", "reminder"} {
		if n := count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = $1`, kind); n != 1000 {
			t.Errorf("%d %s messages, want 1000", n, kind)
		}
		if n := count(t, pool, `SELECT count(DISTINCT telegram_id) FROM test_notices WHERE kind = $1`, kind); n != 1000 {
			t.Errorf("%s messages reached %d users, want 1000", kind, n)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'reminder' AND days <> 1`); n != 0 {
		t.Errorf("%d reminders other than the 1-day one (the 3-day one was already due at issue)", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM peers WHERE status = 'active'`); n != 0 {
		t.Errorf("%d peers still active", n)
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startNode runs jobs in this process.
func startNode(t *testing.T, url string, offset time.Duration) *node {
	n, err := newNode(context.Background(), url, "", offset)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.jobs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.jobs.Stop(ctx)
		n.pool.Close()
	})
	return n
}

// Renewal a minute before expiry: nothing expires, the reminders move to
// the new period (each sent once per period), the address stays.
func TestRenewalBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	url, pool := setupDB(t)
	n, err := newNode(ctx, url, "", 0) // jobs are queued, not worked: the queue is inspected
	if err != nil {
		t.Fatal(err)
	}
	defer n.pool.Close()
	u, _ := n.svc.Register(ctx, wgbot.User{TelegramID: 77}, "")
	sub, d, err := n.svc.Grant(ctx, u, 30, 1)
	if err != nil {
		t.Fatal(err)
	}
	oldExpiry := sub.ExpiresAt
	at := func(now time.Time) *service.Service {
		return service.New(n.store, mustKeyring(t), nil, service.Config{Server: serverOf(t, n), Plans: service.DefaultPlans()},
			func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	queue := func(now time.Time, want int) {
		t.Helper()
		if got, err := at(now).QueueReminders(ctx); err != nil || got != want {
			t.Fatalf("at %v: %d reminders queued (%v), want %d", now, got, err, want)
		}
	}
	queue(oldExpiry.AddDate(0, 0, -3).Add(-time.Minute), 0)
	queue(oldExpiry.AddDate(0, 0, -3).Add(time.Minute), 1) // 3 days left
	queue(oldExpiry.AddDate(0, 0, -3).Add(time.Hour), 0)   // once

	// A minute before expiry, the user pays for a month.
	plan, _ := n.svc.Plan("month")
	res, err := at(oldExpiry.Add(-time.Minute)).Credit(ctx, wgbot.Credit{Provider: "stars", ProviderPaymentID: "renew-1",
		UserID: u.ID, Amount: 150, Currency: "XTR", Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	newExpiry := oldExpiry.AddDate(0, 0, 30)
	if !res.Subscription.ExpiresAt.Equal(newExpiry) || res.NewPeer != nil {
		t.Fatalf("renewal: expiry %v (want %v), new peer %v", res.Subscription.ExpiresAt, newExpiry, res.NewPeer)
	}
	// Two minutes after the old expiry nothing expires, and the old
	// period's 1-day reminder never comes.
	if expired, err := at(oldExpiry.Add(2 * time.Minute)).ExpireDue(ctx); err != nil || len(expired) != 0 {
		t.Fatalf("expired after renewal: %v %v", expired, err)
	}
	queue(oldExpiry.Add(2*time.Minute), 0)
	// The new period's reminders come at 3 and 1 days before it, once each.
	queue(newExpiry.AddDate(0, 0, -3).Add(time.Minute), 1)
	queue(newExpiry.AddDate(0, 0, -1).Add(time.Minute), 1)
	queue(newExpiry.AddDate(0, 0, -1).Add(time.Hour), 0)
	for _, r := range []struct {
		expires time.Time
		days    int
	}{{oldExpiry, 3}, {newExpiry, 3}, {newExpiry, 1}} {
		if c := count(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'expiry_reminder'
			AND (args->>'days_before')::int = $1 AND (args->>'expires_at')::timestamptz = $2`, r.days, r.expires); c != 1 {
			t.Errorf("%d reminder jobs %d days before %v, want 1", c, r.days, r.expires)
		}
	}
	if c := count(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'expiry_reminder'`); c != 3 {
		t.Errorf("%d reminder jobs, want 3", c)
	}
	devices, _ := n.svc.Devices(ctx, u)
	if len(devices) != 1 || devices[0].IP != d.Peer.IP {
		t.Fatalf("address changed by renewal: %+v", devices)
	}
}

// Downtime: subscriptions that expired while wgbot was down are expired
// by the first run after start.
func TestExpiryAfterDowntime(t *testing.T) {
	ctx := context.Background()
	url, pool := setupDB(t)
	setup, err := newNode(ctx, url, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		u, _ := setup.svc.Register(ctx, wgbot.User{TelegramID: int64(500 + i)}, "")
		if _, _, err := setup.svc.Grant(ctx, u, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	setup.pool.Close()
	// While "down", their time runs out.
	if _, err := pool.Exec(ctx, `UPDATE subscriptions SET expires_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	startNode(t, url, 0)
	waitFor(t, 15*time.Second, "expiry after start", func() bool {
		return count(t, pool, `SELECT count(*) FROM subscriptions WHERE status = 'expired'`) == 20
	})
	t.Logf("expired within %v of start", time.Since(start).Round(100*time.Millisecond))
	waitFor(t, 15*time.Second, "expiry messages", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'expired'`) == 20
	})
}

// Outbox: a credited payment's notice is delivered once, also when the
// process that credited it dies before telling the user.
func TestPaymentNoticeSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	url, pool := setupDB(t)
	// Credit with jobs inserted but no worker running: the "crash".
	offline, err := newNode(ctx, url, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := offline.svc.Register(ctx, wgbot.User{TelegramID: 88}, "")
	plan, _ := offline.svc.Plan("month")
	for range 5 { // redelivered five times
		if _, err := offline.svc.Credit(ctx, wgbot.Credit{Provider: "stars", ProviderPaymentID: "ch-1", UserID: u.ID, Amount: 150, Currency: "XTR", Plan: plan}); err != nil {
			t.Fatal(err)
		}
	}
	offline.pool.Close()
	if c := count(t, pool, `SELECT count(*) FROM test_notices`); c != 0 {
		t.Fatal("notified before any worker ran")
	}
	startNode(t, url, 0) // "after restart"
	waitFor(t, 15*time.Second, "payment notice", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'payment'`) >= 1
	})
	time.Sleep(time.Second)
	if c := count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'payment'`); c != 1 {
		t.Fatalf("%d payment notices, want exactly 1", c)
	}
	if c := count(t, pool, `SELECT count(*) FROM peers WHERE delivered_at IS NULL`); c != 0 {
		t.Errorf("the config that came with the payment notice is not recorded as delivered")
	}
}

// Outbox: new devices' configs (trials, grants, added devices) committed
// by a process that died before sending any are delivered after a restart,
// each exactly once.
func TestDeviceDeliveriesSurviveCrash(t *testing.T) {
	ctx := context.Background()
	url, pool := setupDB(t)
	offline, err := newNode(ctx, url, "", 0) // jobs inserted, no worker: the process dies before sending
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		u, err := offline.svc.Register(ctx, wgbot.User{TelegramID: int64(900 + i)}, "")
		if err != nil {
			t.Fatal(err)
		}
		if i < 5 {
			_, err = offline.svc.IssueTrial(ctx, u)
		} else if _, _, err = offline.svc.Grant(ctx, u, 30, 3); err == nil {
			_, err = offline.svc.AddDevice(ctx, u, "laptop")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	offline.pool.Close()
	if c := count(t, pool, `SELECT count(*) FROM test_notices`); c != 0 {
		t.Fatal("configs sent before any worker ran")
	}
	startNode(t, url, 0) // "after restart"
	waitFor(t, 30*time.Second, "15 configs", func() bool {
		return count(t, pool, `SELECT count(*) FROM test_notices WHERE kind LIKE 'device:%'`) >= 15
	})
	waitFor(t, 10*time.Second, "every delivery job done", func() bool {
		return count(t, pool, `SELECT count(*) FROM river_job WHERE kind = 'device_issued' AND state <> 'completed'`) == 0
	})
	if c := count(t, pool, `SELECT count(*) FROM test_notices WHERE kind LIKE 'device:%'`); c != 15 {
		t.Fatalf("%d configs sent for 15 devices", c)
	}
	for kind, want := range map[string]int{"device:trial": 5, "device:grant": 5, "device:device": 5} {
		if c := count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = $1`, kind); c != want {
			t.Errorf("%d %s configs, want %d", c, kind, want)
		}
	}
	if c := count(t, pool, `SELECT count(*) FROM peers p JOIN test_notices n ON n.peer = p.public_key AND n.telegram_id = (
			SELECT u.telegram_id FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE s.id = p.subscription_id)
		WHERE p.delivered_at IS NOT NULL`); c != 15 {
		t.Errorf("%d of 15 configs went to their device's owner and are recorded as delivered", c)
	}
	if c := count(t, pool, `SELECT count(*) FROM test_notices WHERE kind = 'device:grant' AND days <> 30`); c != 0 {
		t.Errorf("%d grant configs without the days granted", c)
	}
}

func mustKeyring(t *testing.T) *secret.Keyring {
	k, err := secret.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serverOf(t *testing.T, n *node) wgbot.Server {
	srv, err := n.store.Server(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}
