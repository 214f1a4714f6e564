package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/service/servicetest"
)

// Child processes re-execute this test binary with a role in this variable.
const roleEnv = "WGBOT_SERVICE_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runChild(role); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

var testKey = bytes.Repeat([]byte{7}, 32)

// env is one service on one test database.
type env struct {
	url   string
	pool  *pgxpool.Pool
	store *postgres.Store
	svc   *service.Service
}

type provisionFunc func(context.Context, wgbot.Change) error

func (f provisionFunc) Apply(ctx context.Context, ch wgbot.Change) error { return f(ctx, ch) }

// storeSetup is how an env's store is built: its options, and whether it
// inserts follow-up jobs through an outbox, as in serve.
type storeSetup struct {
	opts postgres.Options
	jobs bool
}

// testLockID is the allocator's lock id every env's store takes.
const testLockID = servicetest.LockID

func newEnv(ctx context.Context, url, subnet string, apply service.Provisioner, ss storeSetup) (*env, error) {
	prefix := netip.MustParsePrefix(subnet)
	s, err := servicetest.Build(ctx, url, servicetest.Options{
		Server: wgbot.Server{
			Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820", Subnet: prefix,
			Subnet6: netip.MustParsePrefix("fd42::/64"), Address: prefix.Addr().Next(), PublicKey: "c2VydmVy", DNS: []string{"1.1.1.1"}, MTU: 1420,
		},
		Store: ss.opts, Jobs: ss.jobs, Key: testKey, Apply: apply,
		Config: service.Config{Keepalive: 25, ApplyWait: time.Second},
	})
	if err != nil {
		return nil, err
	}
	return &env{url: url, pool: s.Pool, store: s.Store, svc: s.Service}, nil
}

func setup(t *testing.T, subnet string, apply service.Provisioner) *env {
	t.Helper()
	return setupWith(t, subnet, apply, storeSetup{})
}

func setupWith(t *testing.T, subnet string, apply service.Provisioner, ss storeSetup) *env {
	t.Helper()
	e, err := newEnv(context.Background(), pgtest.URL(t), subnet, apply, ss)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	return e
}

func (e *env) user(t testing.TB, telegramID int64) wgbot.User {
	u, err := e.svc.Register(context.Background(), wgbot.User{TelegramID: telegramID, Language: "en"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// checkInvariants asserts I1 over the whole table.
func (e *env) checkInvariants(t testing.TB) {
	t.Helper()
	var dupIPs, dupKeys, outside int
	err := e.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM peers WHERE status = 'active' GROUP BY server_id, ip HAVING count(*) > 1) d),
		(SELECT count(*) FROM (SELECT 1 FROM peers GROUP BY public_key HAVING count(*) > 1) k),
		(SELECT count(*) FROM peers p JOIN servers s ON s.id = p.server_id
			WHERE NOT (p.ip << s.subnet) OR p.ip = s.address OR p.ip = network(s.subnet) OR p.ip = broadcast(s.subnet))`).
		Scan(&dupIPs, &dupKeys, &outside)
	if err != nil {
		t.Fatal(err)
	}
	if dupIPs+dupKeys+outside > 0 {
		t.Fatalf("invariant broken: %d shared ips, %d shared keys, %d addresses outside the hosts of the subnet", dupIPs, dupKeys, outside)
	}
}

// mustExec runs a fixture statement; a fixture that silently fails would
// let the assertions after it pass for the wrong reason.
func mustExec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("fixture %q: %v", sql, err)
	}
}

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// startChildren runs n copies of this binary in a role and waits for them.
func startChildren(t *testing.T, n int, role string, env ...string) []*exec.Cmd {
	t.Helper()
	var cmds []*exec.Cmd
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), roleEnv+"="+role, "CHILD_INDEX="+strconv.Itoa(i))
		cmd.Env = append(cmd.Env, env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() && out.Len() > 0 {
				t.Logf("child %d output:\n%s", i, out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	return cmds
}

func waitAll(t *testing.T, cmds []*exec.Cmd) {
	t.Helper()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
}

func runChild(role string) error {
	ctx := context.Background()
	index, _ := strconv.Atoi(os.Getenv("CHILD_INDEX"))
	if mine, err := runRevenueChild(ctx, role, index); mine {
		return err
	}
	if mine, err := runQuotaChild(ctx, role); mine {
		return err
	}
	if mine, err := runOutageChild(ctx, role); mine {
		return err
	}
	if mine, err := runNodeKeyChild(ctx, role); mine {
		return err
	}
	if mine, err := runAuditChild(ctx, role); mine {
		return err
	}
	e, err := newEnv(ctx, os.Getenv("CHILD_DB"), os.Getenv("CHILD_SUBNET"), nil, storeSetup{})
	if err != nil {
		return err
	}
	defer e.pool.Close()
	switch role {
	case "trials":
		// Users [first, first+n) of this child, issued from many goroutines.
		per, _ := strconv.Atoi(os.Getenv("CHILD_USERS"))
		first := int64(1_000_000 + index*per)
		var wg sync.WaitGroup
		errs := make(chan error, per)
		sem := make(chan struct{}, 32)
		for i := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				u, err := e.svc.Register(ctx, wgbot.User{TelegramID: first + int64(i)}, "")
				if err == nil {
					_, err = e.svc.IssueTrial(ctx, u)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	case "send-issued":
		return sendIssuedChild(ctx, e)
	case "hold-lock":
		// Take the allocator's lock in a transaction and hang, as a process
		// stuck or killed mid-issuance would.
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 1)`, testLockID); err != nil {
			return err
		}
		fmt.Println("holding")
		select {}
	case "churn":
		// Issue and revoke in a loop for a while.
		deadline := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tg := int64(2_000_000 + index*1000 + g)
				u, err := e.svc.Register(ctx, wgbot.User{TelegramID: tg}, "")
				if err != nil {
					errs <- err
					return
				}
				for n := 0; time.Now().Before(deadline); n++ {
					if _, _, err := e.svc.Grant(ctx, u, 1, 3); err != nil {
						errs <- err
						return
					}
					if _, err := e.svc.AddDevice(ctx, u, "extra"); err != nil && !errors.Is(err, wgbot.ErrDeviceLimit) {
						errs <- err
						return
					}
					if err := e.svc.Revoke(ctx, u); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	return fmt.Errorf("unknown role %q", role)
}

// Seed: two simultaneous trials never get the same IP. 500 users from 2 OS
// processes with many goroutines each.
func TestTrialsFromSeveralProcesses(t *testing.T) {
	e := setup(t, "10.20.0.0/16", nil)
	children := startChildren(t, 2, "trials", "CHILD_DB="+e.url, "CHILD_SUBNET=10.20.0.0/16", "CHILD_USERS=250")
	waitAll(t, children)
	e.checkInvariants(t)
	if n := count(t, e.pool, `SELECT count(DISTINCT ip) FROM peers WHERE status = 'active'`); n != 500 {
		t.Fatalf("want 500 distinct addresses, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(DISTINCT public_key) FROM peers`); n != 500 {
		t.Fatalf("want 500 distinct keys, got %d", n)
	}
	// Lowest free first: the 500 addresses are exactly .0.2 ... .1.245.
	if n := count(t, e.pool, `SELECT count(*) FROM peers WHERE ip > '10.20.1.245'`); n != 0 {
		t.Fatalf("%d addresses above the lowest 500 hosts", n)
	}
}

// I2: 100 concurrent trial requests for one user give one trial, one peer.
func TestOneTrialPerUser(t *testing.T) {
	e := setup(t, "10.21.0.0/24", nil)
	ctx := context.Background()
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := e.svc.Register(ctx, wgbot.User{TelegramID: 42, Language: "en"}, "")
			if err != nil {
				t.Error(err)
				return
			}
			_, err = e.svc.IssueTrial(ctx, u)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, wgbot.ErrTrialUsed):
				used.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || used.Load() != 99 {
		t.Fatalf("want 1 trial and 99 refusals, got %d and %d", ok.Load(), used.Load())
	}
	if n := count(t, e.pool, `SELECT count(*) FROM users`); n != 1 {
		t.Fatalf("want one user row, got %d", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers`); n != 1 {
		t.Fatalf("want one peer, got %d", n)
	}
	// After the trial ends it is still used: never a second one.
	mustExec(t, e.pool, `UPDATE subscriptions SET status = 'expired'`)
	u := e.user(t, 42)
	if _, err := e.svc.IssueTrial(ctx, u); !errors.Is(err, wgbot.ErrTrialUsed) {
		t.Fatalf("second trial after expiry: %v", err)
	}
}

func credit(u wgbot.User, id string, plan wgbot.Plan) wgbot.Credit {
	return wgbot.Credit{Provider: "stars", ProviderPaymentID: id, UserID: u.ID, Amount: plan.Prices["XTR"], Currency: "XTR", Plan: plan}
}

// Seed: repeated payments through webhooks in a fast series: no duplicate
// IPs, one credit per payment.
func TestRepeatedPayments(t *testing.T) {
	ctx := context.Background()
	t.Run("one payment delivered 50 times", func(t *testing.T) {
		e := setup(t, "10.22.0.0/24", nil)
		u := e.user(t, 7)
		plan, _ := e.svc.Plan("month")
		var credited, dup atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.svc.Credit(ctx, credit(u, "charge-1", plan))
				switch {
				case err != nil:
					t.Error(err)
				case res.Duplicate:
					dup.Add(1)
				default:
					credited.Add(1)
				}
			}()
		}
		wg.Wait()
		if credited.Load() != 1 || dup.Load() != 49 {
			t.Fatalf("want 1 credit and 49 duplicates, got %d and %d", credited.Load(), dup.Load())
		}
		if n := count(t, e.pool, `SELECT count(*) FROM peers`); n != 1 {
			t.Fatalf("want one peer, got %d", n)
		}
		sub, err := e.svc.Subscription(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if d := sub.ExpiresAt.Sub(sub.StartsAt); d != 30*24*time.Hour {
			t.Fatalf("want 30 days of access, got %v", d)
		}
	})
	t.Run("20 different payments in a burst", func(t *testing.T) {
		e := setup(t, "10.23.0.0/24", nil)
		u := e.user(t, 8)
		plan, _ := e.svc.Plan("month")
		before := time.Now()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.svc.Credit(ctx, credit(u, fmt.Sprintf("charge-%d", i), plan)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if n := count(t, e.pool, `SELECT count(*) FROM peers`); n != 1 {
			t.Fatalf("want one peer, got %d", n)
		}
		if n := count(t, e.pool, `SELECT count(*) FROM payments`); n != 20 {
			t.Fatalf("want 20 payments, got %d", n)
		}
		sub, _ := e.svc.Subscription(ctx, u)
		want := before.AddDate(0, 0, 600)
		if sub.ExpiresAt.Before(want.Add(-time.Minute)) || sub.ExpiresAt.After(want.Add(time.Minute)) {
			t.Fatalf("want expiry near %v (20 × 30 days), got %v", want, sub.ExpiresAt)
		}
	})
	t.Run("paying during a trial keeps the peer and address", func(t *testing.T) {
		e := setup(t, "10.24.0.0/24", nil)
		u := e.user(t, 9)
		trial, err := e.svc.IssueTrial(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		plan, _ := e.svc.Plan("month")
		res, err := e.svc.Credit(ctx, credit(u, "charge-x", plan))
		if err != nil {
			t.Fatal(err)
		}
		if res.NewPeer != nil {
			t.Fatal("a renewal issued a second peer")
		}
		if want := trial.Subscription.ExpiresAt.AddDate(0, 0, 30); !res.Subscription.ExpiresAt.Equal(want) {
			t.Fatalf("renewal should extend from the current expiry: want %v, got %v", want, res.Subscription.ExpiresAt)
		}
		devices, _ := e.svc.Devices(ctx, u)
		if len(devices) != 1 || devices[0].IP != trial.Peer.IP {
			t.Fatalf("devices after renewal: %+v", devices)
		}
	})
}

// Seed: a forced failure of the WireGuard step does not block the next
// request, leaves no lock behind and does not burn the trial.
func TestApplyFailure(t *testing.T) {
	ctx := context.Background()
	var fail atomic.Bool
	fail.Store(true)
	e := setup(t, "10.25.0.0/24", provisionFunc(func(ctx context.Context, ch wgbot.Change) error {
		if fail.Load() {
			return errors.New("injected: wg set failed")
		}
		return nil
	}))
	u := e.user(t, 11)
	_, err := e.svc.IssueTrial(ctx, u)
	if !errors.Is(err, wgbot.ErrApplyFailed) {
		t.Fatalf("want ErrApplyFailed, got %v", err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); n != 0 {
		t.Fatalf("%d advisory locks held after the failure", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers`); n != 0 {
		t.Fatalf("the undelivered peer was kept: %d peers", n)
	}
	// Another user's request goes through at once...
	fail.Store(false)
	start := time.Now()
	other, err := e.svc.IssueTrial(ctx, e.user(t, 12))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the next request took %v", d)
	}
	// ... and the first user still has their trial, on the freed address.
	mine, err := e.svc.IssueTrial(ctx, u)
	if err != nil {
		t.Fatalf("trial burned by the failed attempt: %v", err)
	}
	if other.Peer.IP != netip.MustParseAddr("10.25.0.2") || mine.Peer.IP != netip.MustParseAddr("10.25.0.3") {
		t.Fatalf("addresses: other %v, mine %v", other.Peer.IP, mine.Peer.IP)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); n != 0 {
		t.Fatalf("%d advisory locks held afterwards", n)
	}
}

// I1 under churn: issue and revoke interleaved across processes, checked
// continuously while it runs.
func TestRevokeAndIssueInterleaved(t *testing.T) {
	e := setup(t, "10.26.0.0/24", nil)
	children := startChildren(t, 3, "churn", "CHILD_DB="+e.url, "CHILD_SUBNET=10.26.0.0/24")
	done := make(chan struct{})
	go func() {
		waitAll(t, children)
		close(done)
	}()
	checks := 0
	for running := true; running; checks++ {
		select {
		case <-done:
			running = false
		case <-time.After(5 * time.Millisecond):
		}
		// Read the live peers in one snapshot, as a reader would.
		if n := count(t, e.pool, `SELECT count(*) FROM (SELECT ip FROM peers WHERE status <> 'revoked'
			GROUP BY server_id, ip HAVING count(*) > 1) d`); n != 0 {
			t.Fatalf("%d addresses shared by live peers", n)
		}
	}
	e.checkInvariants(t)
	issued := count(t, e.pool, `SELECT count(*) FROM peers`)
	if issued < 50 {
		t.Fatalf("only %d peers issued: the churn did not run", issued)
	}
	t.Logf("%d peers issued and revoked, %d checks", issued, checks)
}

func TestPrivateKeysEncryptedAtRest(t *testing.T) {
	e := setup(t, "10.27.0.0/24", nil)
	d, err := e.svc.IssueTrial(context.Background(), e.user(t, 13))
	if err != nil {
		t.Fatal(err)
	}
	var priv, psk string
	for _, line := range strings.Split(string(d.Config), "\n") {
		if v, ok := strings.CutPrefix(line, "PrivateKey = "); ok {
			priv = v
		}
		if v, ok := strings.CutPrefix(line, "PresharedKey = "); ok {
			psk = v
		}
	}
	key, _ := wgtypes.ParseKey(priv)
	pskKey, _ := wgtypes.ParseKey(psk)
	var raw []byte
	var rowText string
	err = e.pool.QueryRow(context.Background(), `SELECT private_key_enc || preshared_key_enc, p::text FROM peers p`).Scan(&raw, &rowText)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range [][]byte{key[:], pskKey[:], []byte(priv), []byte(psk)} {
		if bytes.Contains(raw, secret) || strings.Contains(rowText, string(secret)) {
			t.Fatal("a client key is stored in plain text")
		}
	}
	if key.PublicKey().String() != d.Peer.PublicKey {
		t.Fatal("the delivered private key does not match the stored public key")
	}
	// The stored ciphertext opens to the delivered config again.
	again, err := e.svc.DeviceConfig(context.Background(), e.user(t, 13), d.Peer.ID)
	if err != nil || !bytes.Equal(again.Config, d.Config) {
		t.Fatalf("re-rendered config differs: %v", err)
	}
}

func TestSubnetExhausted(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.28.0.0/29", nil) // hosts .1-.6; .1 is the server
	for i := range 5 {
		if _, err := e.svc.IssueTrial(ctx, e.user(t, int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.svc.IssueTrial(ctx, e.user(t, 200))
	if !errors.Is(err, wgbot.ErrNoFreeAddress) || !strings.Contains(err.Error(), "10.28.0.0/29") {
		t.Fatalf("want no free addresses on the server, got %v", err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM subscriptions`); n != 5 {
		t.Fatalf("a failed allocation left rows behind: %d subscriptions", n)
	}
	// Freeing one makes it available again, and the trial was not burned.
	u := e.user(t, 100)
	devices, _ := e.svc.Devices(ctx, u)
	if err := e.svc.RemoveDevice(ctx, u, devices[0].ID); err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.IssueTrial(ctx, e.user(t, 200))
	if err != nil || d.Peer.IP != devices[0].IP {
		t.Fatalf("freed address not reused: %v %v", d.Peer.IP, err)
	}
}

func TestForgedDeviceIDs(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.29.0.0/24", nil)
	alice, mallory := e.user(t, 1), e.user(t, 2)
	d, err := e.svc.IssueTrial(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RemoveDevice(ctx, mallory, d.Peer.ID); !errors.Is(err, wgbot.ErrPeerNotFound) {
		t.Fatalf("removing another user's device: %v", err)
	}
	if _, err := e.svc.DeviceConfig(ctx, mallory, d.Peer.ID); !errors.Is(err, wgbot.ErrPeerNotFound) {
		t.Fatalf("reading another user's config: %v", err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers WHERE status = 'active'`); n != 1 {
		t.Fatal("the forged request changed something")
	}
}

func TestDeviceLimit(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.30.0.0/24", nil)
	u := e.user(t, 1)
	if _, _, err := e.svc.Grant(ctx, u, 30, 3); err != nil {
		t.Fatal(err)
	}
	var added, refused atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.AddDevice(ctx, u, "laptop")
			switch {
			case err == nil:
				added.Add(1)
			case errors.Is(err, wgbot.ErrDeviceLimit):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if added.Load() != 2 || refused.Load() != 8 {
		t.Fatalf("limit 3 with one device: want 2 added, 8 refused; got %d, %d", added.Load(), refused.Load())
	}
}

func TestExpiryDisablesAndRenewalRestores(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.31.0.0/24", nil)
	u := e.user(t, 1)
	d, err := e.svc.IssueTrial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE subscriptions SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	expired, err := e.svc.ExpireDue(ctx)
	if err != nil || len(expired) != 1 || expired[0].TelegramID != 1 {
		t.Fatalf("ExpireDue = %+v, %v", expired, err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers WHERE status = 'active'`); n != 0 {
		t.Fatal("an expired subscription kept an active peer")
	}
	if again, _ := e.svc.ExpireDue(ctx); len(again) != 0 {
		t.Fatal("a subscription expired twice")
	}
	plan, _ := e.svc.Plan("month")
	res, err := e.svc.Credit(ctx, credit(u, "renew", plan))
	if err != nil || res.NewPeer != nil {
		t.Fatalf("renewal: %+v %v", res, err)
	}
	devices, _ := e.svc.Devices(ctx, u)
	if len(devices) != 1 || devices[0].IP != d.Peer.IP || devices[0].Status != wgbot.PeerActive {
		t.Fatalf("renewal did not restore the same peer: %+v", devices)
	}
}

// A freed address is reused only after the revoke commits, and not before
// WG_ADDRESS_QUARANTINE has passed.
func TestAddressQuarantine(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.32.0.0/24", nil)
	quarantined := postgres.NewStore(e.pool, postgres.Options{LockID: testLockID, Quarantine: time.Hour}, nil)
	keys, _ := secret.NewKeyring(testKey)
	srv, _ := quarantined.Server(ctx, 1)
	svc := service.New(quarantined, keys, nil, service.Config{Server: srv, TrialDays: 3}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	first, err := svc.IssueTrial(ctx, e.user(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RemoveDevice(ctx, e.user(t, 1), first.Peer.ID); err != nil {
		t.Fatal(err)
	}
	next, err := svc.IssueTrial(ctx, e.user(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if next.Peer.IP == first.Peer.IP {
		t.Fatalf("%v was reused within its quarantine", first.Peer.IP)
	}
	// Once the quarantine is over, it is the lowest free address again.
	mustExec(t, e.pool, `UPDATE free_addresses SET available_at = now() - interval '1 second'`)
	third, err := svc.IssueTrial(ctx, e.user(t, 3))
	if err != nil || third.Peer.IP != first.Peer.IP {
		t.Fatalf("after the quarantine: %v %v", third.Peer.IP, err)
	}
}

// A refund takes back only the unused part of the period the payment
// bought: time a later payment bought after that period ran out stays.
func TestRefundTakesBackOnlyUnusedTime(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.33.0.0/24", nil)
	u := e.user(t, 1)
	plan, _ := e.svc.Plan("month")
	if _, err := e.svc.Credit(ctx, credit(u, "p1", plan)); err != nil {
		t.Fatal(err)
	}
	// P1's month runs out (time moves on by a month); the user pays again.
	mustExec(t, e.pool, `UPDATE subscriptions SET expires_at = now() - interval '1 minute';
		UPDATE payments SET credited_until = now() - interval '1 minute'`)
	if _, err := e.svc.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Credit(ctx, credit(u, "p2", plan))
	if err != nil {
		t.Fatal(err)
	}
	refund, err := e.svc.Refund(ctx, "stars", "p1")
	if err != nil || refund.Revoked || refund.Days != 0 {
		t.Fatalf("refund of a used-up payment: %+v %v", refund, err)
	}
	sub, _ := e.svc.Subscription(ctx, u)
	if sub.Status != wgbot.SubscriptionActive || !sub.ExpiresAt.Equal(res.Subscription.ExpiresAt) {
		t.Fatalf("P2's time changed: %+v", sub)
	}
	// Refunding P2, unused, takes its month back and ends access.
	refund, err = e.svc.Refund(ctx, "stars", "p2")
	if err != nil || !refund.Revoked {
		t.Fatalf("refund of the live payment: %+v %v", refund, err)
	}
}

// A take-back after a failed apply never frees an address that was
// revoked (and perhaps reissued) meanwhile.
func TestTakeBackSkipsRevokedPeer(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.34.0.0/24", nil)
	a := e.user(t, 1)
	d, err := e.svc.IssueTrial(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Revoke(ctx, a); err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.IssueTrial(ctx, e.user(t, 2)) // takes the freed address
	if err != nil || b.Peer.IP != d.Peer.IP {
		t.Fatalf("reuse: %v %v", b.Peer.IP, err)
	}
	if _, err := e.store.DeletePeer(ctx, d.Peer.ID, true); !errors.Is(err, wgbot.ErrPeerNotFound) {
		t.Fatalf("take-back of a revoked peer: %v", err)
	}
	for i := range 3 {
		if _, err := e.svc.IssueTrial(ctx, e.user(t, int64(10+i))); err != nil {
			t.Fatalf("issuance after the take-back: %v", err)
		}
	}
	e.checkInvariants(t)
}

// An expired order is refused at checkout (its price may be stale), but a
// payment that arrives for it anyway is still credited.
func TestExpiredOrder(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.35.0.0/24", nil)
	u := e.user(t, 1)
	o, err := e.svc.CreateOrder(ctx, u, "month", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CheckOrder(ctx, u, o.ID, "XTR", o.Amount); err != nil {
		t.Fatalf("fresh order refused: %v", err)
	}
	keys, _ := secret.NewKeyring(testKey)
	srv, _ := e.store.Server(ctx, 1)
	later := service.New(e.store, keys, nil, service.Config{Server: srv, Plans: service.DefaultPlans()},
		func() time.Time { return o.ExpiresAt.Add(time.Minute) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := later.CheckOrder(ctx, u, o.ID, "XTR", o.Amount); wgbot.ErrorReason(err) != "order_closed" {
		t.Fatalf("expired order at checkout: %v", err)
	}
	res, err := later.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "late", OrderID: o.ID, Amount: o.Amount, Currency: "XTR"})
	if err != nil || res.Duplicate || res.NewPeer == nil {
		t.Fatalf("late payment: %+v %v", res, err)
	}
}

// I6 across processes: a process killed while it holds the allocator's
// lock does not block the next request; PostgreSQL ends its transaction
// with its connection.
func TestKilledLockHolderBlocksNothing(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.36.0.0/24", nil)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=hold-lock", "CHILD_DB="+e.url, "CHILD_SUBNET=10.36.0.0/24")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line := make([]byte, 8)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "holding\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	// While it holds the lock, an issuance waits.
	u := e.user(t, 1)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = e.svc.IssueTrial(short, u)
	cancel()
	if err == nil {
		t.Fatal("an issuance went through while another process held the allocator's lock")
	}
	cmd.Process.Kill()
	cmd.Wait()
	start := time.Now()
	if _, err := e.svc.IssueTrial(ctx, u); err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the next issuance waited %v for a dead process's lock", took)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); n != 0 {
		t.Fatalf("%d advisory locks left", n)
	}
}

// Rotation: after Rekey under a new master key, every peer opens with the
// new key alone, so the old one can be retired.
func TestRekey(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.37.0.0/24", nil)
	var delivered []service.Delivery
	for i := range 3 {
		d, err := e.svc.IssueTrial(ctx, e.user(t, int64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		delivered = append(delivered, d)
	}
	newKey := bytes.Repeat([]byte{8}, 32)
	srv, _ := e.store.Server(ctx, 1)
	rotating, _ := secret.NewKeyring(newKey, testKey)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := service.Config{Server: srv, ClientRoutes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, Keepalive: 25}
	n, err := service.New(e.store, rotating, nil, cfg, nil, log).Rekey(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Rekey = %d, %v", n, err)
	}
	newOnly, _ := secret.NewKeyring(newKey)
	svc := service.New(e.store, newOnly, nil, cfg, nil, log)
	for i, d := range delivered {
		again, err := svc.DeviceConfig(ctx, e.user(t, int64(i+1)), d.Peer.ID)
		if err != nil || !bytes.Equal(again.Config, d.Config) {
			t.Fatalf("peer %d after rekey: %v", d.Peer.ID, err)
		}
	}
	if n, err := service.New(e.store, newOnly, nil, cfg, nil, log).Rekey(ctx); err != nil || n != 0 {
		t.Fatalf("second Rekey = %d, %v", n, err)
	}
}

// RENEWAL_GRACE: renewing soon after expiry restores the same peer;
// renewing after the grace period issues a new device instead.
func TestRenewalGrace(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		expiredAt string // how long ago the subscription expired
		samePeer  bool
	}{
		{"within the grace period", "1 day", true},
		{"after the grace period", "10 days", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := setupWith(t, "10.38.0.0/24", nil, storeSetup{opts: postgres.Options{RenewalGrace: 7 * 24 * time.Hour}})
			u := e.user(t, 1)
			plan, _ := e.svc.Plan("month")
			first, err := e.svc.Credit(ctx, credit(u, "p1", plan))
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, e.pool, `UPDATE subscriptions SET expires_at = now() - interval '`+tt.expiredAt+`'`)
			if _, err := e.svc.ExpireDue(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := e.svc.Credit(ctx, credit(u, "p2", plan))
			if err != nil {
				t.Fatal(err)
			}
			devices, _ := e.svc.Devices(ctx, u)
			if len(devices) != 1 {
				t.Fatalf("%d devices after renewal", len(devices))
			}
			same := devices[0].ID == first.NewPeer.ID
			if same != tt.samePeer || (tt.samePeer && res.NewPeer != nil) || (!tt.samePeer && res.NewPeer == nil) {
				t.Fatalf("same peer %v (want %v), new peer %v", same, tt.samePeer, res.NewPeer)
			}
		})
	}
}

// TestConcurrentRenamesToOneName: two of a user's devices renamed to the
// same name at once (two processes) end with one device of that name: one
// rename wins, the other is told the name is taken. Many rounds, since
// the race is a matter of timing.
func TestConcurrentRenamesToOneName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := setup(t, "10.23.0.0/24", nil)
	u := e.user(t, 2301)
	if _, _, err := e.svc.Grant(ctx, u, 30, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddDevice(ctx, u, ""); err != nil {
		t.Fatal(err)
	}
	peers, err := e.svc.Devices(ctx, u)
	if err != nil || len(peers) != 2 {
		t.Fatalf("devices: %v, %v", peers, err)
	}
	for round := range 40 {
		name := fmt.Sprintf("Phone %d", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, p := range peers {
			wg.Go(func() {
				<-start
				_, errs[i] = e.svc.RenameDevice(ctx, u, p.ID, name)
			})
		}
		close(start)
		wg.Wait()
		var named int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM peers WHERE lower(name) = lower($1)`, name).Scan(&named); err != nil {
			t.Fatal(err)
		}
		taken := 0
		for _, err := range errs {
			if errors.Is(err, wgbot.ErrDeviceNameTaken) {
				taken++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if named != 1 || taken != 1 {
			t.Fatalf("round %d: %d devices named %q, %d renames refused; want 1 and 1", round, named, name, taken)
		}
	}
}
