package service_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/service"
	"wgbot/service/servicetest"
)

// quotaPlans sell a month with 5 MB of traffic and a top-up of 5 MB.
var quotaPlans = []wgbot.Plan{
	{Name: "capped", Days: 30, Devices: 2, TrafficGB: 0.005, Prices: map[string]int64{"XTR": 100}},
	{Name: "unlimited", Days: 30, Devices: 2, Prices: map[string]int64{"XTR": 300}},
	{Name: "plus5", Kind: wgbot.PlanTopUp, TopUpGB: 0.005, Prices: map[string]int64{"XTR": 20}},
}

const quotaBytes = 5_000_000

// quotaEnv is a stack selling quotaPlans whose store queues jobs, on a
// clock the test moves.
type quotaEnv struct {
	*servicetest.Stack
	clock *atomic.Int64
}

func buildQuotaEnv(ctx context.Context, url, subnet string, start time.Time) (*quotaEnv, error) {
	clock := &atomic.Int64{}
	clock.Store(start.UnixNano())
	prefix := netip.MustParsePrefix(subnet)
	s, err := servicetest.Build(ctx, url, servicetest.Options{
		Server: wgbot.Server{Name: "main", Interface: "wg0", Endpoint: "vpn.example.com:51820", Subnet: prefix,
			Address: prefix.Addr().Next(), PublicKey: "c2VydmVy", DNS: []string{"1.1.1.1"}, MTU: 1420},
		Jobs: true, Config: service.Config{Plans: quotaPlans, Keepalive: 25, ApplyWait: time.Second},
		Now: func() time.Time { return time.Unix(0, clock.Load()) },
	})
	if err != nil {
		return nil, err
	}
	return &quotaEnv{Stack: s, clock: clock}, nil
}

func newQuotaEnv(t *testing.T, subnet string, start time.Time) *quotaEnv {
	t.Helper()
	e, err := buildQuotaEnv(context.Background(), pgtest.URL(t), subnet, start)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Pool.Close)
	return e
}

func (e *quotaEnv) now() time.Time { return time.Unix(0, e.clock.Load()) }

// buy pays for plan as user through an order, as a provider's
// confirmation does, under the payment id charge.
func (e *quotaEnv) buy(t testing.TB, user wgbot.User, plan, charge string) service.CreditResult {
	t.Helper()
	ctx := context.Background()
	o, err := e.Service.CreateOrder(ctx, user, plan, "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Service.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: charge, OrderID: o.ID, Amount: o.Amount, Currency: "XTR"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// push records that the device's counters reached rx and tx: the
// collector's write.
func (e *quotaEnv) push(t testing.TB, p wgbot.Peer, rx, tx int64) {
	t.Helper()
	e.clock.Add(int64(time.Second))
	if err := e.Store.RecordUsage(context.Background(), p.ServerID, e.now(), []postgres.PeerSample{{PublicKey: p.PublicKey, Received: rx, Transmitted: tx}}); err != nil {
		t.Fatal(err)
	}
}

func (e *quotaEnv) enforce(t testing.TB) wgbot.QuotaCheck {
	t.Helper()
	res, err := e.Service.EnforceQuotas(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// peer reads a device's status, reason, address and key as stored.
func (e *quotaEnv) peer(t testing.TB, id int64) (status string, reason *string, ip netip.Addr, key string) {
	t.Helper()
	if err := e.Pool.QueryRow(context.Background(), `SELECT status, disabled_reason, ip, public_key FROM peers WHERE id = $1`, id).
		Scan(&status, &reason, &ip, &key); err != nil {
		t.Fatal(err)
	}
	return status, reason, ip, key
}

func (e *quotaEnv) noticeJobs(t testing.TB, level int) int {
	return count(t, e.Pool, `SELECT count(*) FROM river_job WHERE kind = 'quota_notice' AND (args->>'level')::int = $1`, level)
}

// TestQuotaAccounting walks one subscription through a month: its
// devices' traffic adds up against the plan's 5 MB, 80% queues one
// notice, 100% another and switches the devices off (kept, with their
// addresses), checks after that change nothing, a top-up brings them back
// with the same keys and addresses, using the top-up up switches them off
// again, a device removed meanwhile stays removed, and the next month
// brings the others back by itself. The devices off
// are out of the reconciler's desired peers, and the purge of expired
// devices leaves them alone.
func TestQuotaAccounting(t *testing.T) {
	ctx := context.Background()
	e := newQuotaEnv(t, "10.191.0.0/24", time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	user := e.Service.Register
	u, err := user(ctx, wgbot.User{TelegramID: 900, Language: "en"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.CreateOrder(ctx, u, "plus5", "stars", "XTR"); wgbot.ErrorCode(err) != wgbot.ENotFound {
		t.Fatalf("a top-up with no subscription: %v, want not found", err)
	}
	res := e.buy(t, u, "capped", "charge-plan")
	if res.NewPeer == nil {
		t.Fatal("the first payment issued no device")
	}
	phone := *res.NewPeer
	laptop, err := e.Service.AddDevice(ctx, u, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	q, err := e.Service.Quota(ctx, u)
	if err != nil || q.Allowance != quotaBytes || q.Used != 0 {
		t.Fatalf("quota after buying: %+v, %v; want %d allowed, none used", q, err, quotaBytes)
	}

	// 3.9 MB over two devices: under 80%.
	e.push(t, phone, 1_000_000, 1_000_000)
	e.push(t, laptop.Peer, 1_900_000, 0)
	if r := e.enforce(t); r.Notices+r.Disabled+r.Enabled != 0 {
		t.Fatalf("at 78%%: %+v, want nothing", r)
	}
	// 4.1 MB: one 80% notice, once.
	e.push(t, laptop.Peer, 2_100_000, 0)
	if r := e.enforce(t); r.Notices != 1 || r.Disabled != 0 {
		t.Fatalf("at 82%%: %+v, want one notice", r)
	}
	if r := e.enforce(t); r.Notices != 0 {
		t.Fatalf("at 82%% again: %+v, want no second notice", r)
	}
	revision := count(t, e.Pool, `SELECT revision FROM servers`)
	// 5.1 MB: the 100% notice, and both devices off.
	e.push(t, phone, 1_000_000, 2_000_000)
	r := e.enforce(t)
	if r.Notices != 1 || r.Disabled != 2 || len(r.Changes) != 1 {
		t.Fatalf("at 102%%: %+v, want one notice, two devices off, one server changed", r)
	}
	if got := count(t, e.Pool, `SELECT revision FROM servers`); got <= revision {
		t.Fatalf("switching devices off left the server's revision at %d", got)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM peer_changes WHERE peer_id = ANY($1)`, []int64{phone.ID, laptop.Peer.ID}); n < 4 {
		t.Fatalf("the change log has %d entries for the two devices, want their issue and their switch-off", n)
	}
	status, reason, ip, key := e.peer(t, phone.ID)
	if status != wgbot.PeerDisabled || reason == nil || *reason != "quota" || ip != phone.IP || key != phone.PublicKey {
		t.Fatalf("the phone at 100%%: %s %v %s, want disabled for quota with its address %s", status, reason, ip, phone.IP)
	}
	desired := 0
	if _, err := e.Store.DesiredPeers(ctx, phone.ServerID, func(int) {}, func(postgres.SealedPeer) error { desired++; return nil }); err != nil || desired != 0 {
		t.Fatalf("desired peers with the quota used up: %d, %v; want none", desired, err)
	}
	if r := e.enforce(t); r.Notices+r.Disabled+r.Enabled != 0 {
		t.Fatalf("a check after 100%%: %+v, want nothing", r)
	}
	if n, err := e.Service.PurgeExpired(ctx, -time.Hour); err != nil || n != 0 {
		t.Fatalf("the purge took %d devices off for the quota (%v); they belong to a live subscription", n, err)
	}
	if e.noticeJobs(t, wgbot.QuotaWarn) != 1 || e.noticeJobs(t, wgbot.QuotaFull) != 1 {
		t.Fatalf("notice jobs: %d at 80%%, %d at 100%%; want one each", e.noticeJobs(t, wgbot.QuotaWarn), e.noticeJobs(t, wgbot.QuotaFull))
	}
	st, err := e.Service.Stats(ctx)
	if err != nil || len(st.OverQuota) != 1 || st.OverQuota[0].TelegramID != 900 || !st.OverQuota[0].Disabled {
		t.Fatalf("stats over quota: %+v, %v", st.OverQuota, err)
	}
	// The notice job finds the level still reached.
	if _, nq, ok, err := e.Service.QuotaNotice(ctx, phone.SubscriptionID, q.Month, wgbot.QuotaFull); err != nil || !ok || nq.Used != 5_100_000 {
		t.Fatalf("quota notice: %+v %v %v", nq, ok, err)
	}

	// A top-up: 10 MB allowed, both devices back with their keys and addresses.
	top := e.buy(t, u, "plus5", "charge-topup")
	if top.TopUp != quotaBytes || top.NewPeer != nil || top.Delivery != nil {
		t.Fatalf("top-up credit: %+v", top.CreditResult)
	}
	status, reason, ip, key = e.peer(t, phone.ID)
	if status != wgbot.PeerActive || reason != nil || ip != phone.IP || key != phone.PublicKey {
		t.Fatalf("the phone after the top-up: %s %v %s %s, want active with %s", status, reason, ip, key, phone.IP)
	}
	if s, _, ip, _ := e.peer(t, laptop.Peer.ID); s != wgbot.PeerActive || ip != laptop.Peer.IP {
		t.Fatalf("the laptop after the top-up: %s %s", s, ip)
	}
	if q, _ := e.Service.Quota(ctx, u); q.Allowance != 2*quotaBytes || q.Used != 5_100_000 {
		t.Fatalf("quota after the top-up: %+v", q)
	}
	// The 100% notice queued before the top-up no longer applies.
	if _, _, ok, err := e.Service.QuotaNotice(ctx, phone.SubscriptionID, q.Month, wgbot.QuotaFull); err != nil || ok {
		t.Fatalf("a 100%% notice after the top-up would be sent: %v %v", ok, err)
	}
	if sub, _ := e.Store.ActiveSubscription(ctx, u.ID); !sub.ExpiresAt.Equal(res.Subscription.ExpiresAt) {
		t.Fatalf("the top-up changed the expiry from %s to %s", res.Subscription.ExpiresAt, sub.ExpiresAt)
	}
	// Past the topped-up 10 MB: off again, told once at 100% of the new
	// allowance (its 80% passed in the same step and is not told after).
	e.push(t, phone, 4_000_000, 4_000_000)
	if r := e.enforce(t); r.Notices != 1 || r.Disabled != 2 {
		t.Fatalf("past the top-up: %+v, want one notice and two devices off", r)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM quota_notices WHERE allowance = $1`, 2*quotaBytes); n != 2 {
		t.Fatalf("notices recorded for the new allowance: %d, want 80%% and 100%%", n)
	}

	// The laptop is removed while paused: it stays removed.
	if err := e.Service.RemoveDevice(ctx, u, laptop.Peer.ID); err != nil {
		t.Fatal(err)
	}
	// A new month: the phone comes back by itself, as it was.
	e.clock.Store(time.Date(2026, 4, 1, 0, 0, 1, 0, time.UTC).UnixNano())
	if r := e.enforce(t); r.Enabled != 1 || r.Notices != 0 {
		t.Fatalf("the next month: %+v, want the phone back", r)
	}
	if s, _, _, _ := e.peer(t, laptop.Peer.ID); s != wgbot.PeerRevoked {
		t.Fatalf("the removed laptop is %s next month", s)
	}
	if s, reason, ip, key := e.peer(t, phone.ID); s != wgbot.PeerActive || reason != nil || ip != phone.IP || key != phone.PublicKey {
		t.Fatalf("the phone next month: %s %v %s", s, reason, ip)
	}
	e.checkQuotaInvariants(t)
}

// TestQuotaUpgradeAndExpiry: buying the unlimited plan while the devices
// are off for the quota brings them back in the payment's transaction;
// expiry takes the quota's devices over as expired ones (the renewal
// grace counts from then), and a plan bought meanwhile keeps its quota
// on the order: a plans-file change does not alter it.
func TestQuotaUpgradeAndExpiry(t *testing.T) {
	ctx := context.Background()
	e := newQuotaEnv(t, "10.192.0.0/24", time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	u, _ := e.Service.Register(ctx, wgbot.User{TelegramID: 901, Language: "ru"}, "")
	phone := *e.buy(t, u, "capped", "c1").NewPeer
	e.push(t, phone, 6_000_000, 0)
	if r := e.enforce(t); r.Disabled != 1 {
		t.Fatalf("over quota: %+v", r)
	}
	e.buy(t, u, "unlimited", "c2")
	if s, _, ip, _ := e.peer(t, phone.ID); s != wgbot.PeerActive || ip != phone.IP {
		t.Fatalf("after buying the unlimited plan the phone is %s at %s", s, ip)
	}
	if q, _ := e.Service.Quota(ctx, u); q.Allowance != 0 {
		t.Fatalf("unlimited plan's allowance %d", q.Allowance)
	}
	// Back to the capped plan: off again at once, in the payment.
	e.buy(t, u, "capped", "c3")
	if s, reason, _, _ := e.peer(t, phone.ID); s != wgbot.PeerDisabled || reason == nil {
		t.Fatalf("after buying the capped plan again over its quota the phone is %s", s)
	}
	// Expiry: the device is off for the expiry now.
	e.clock.Add(int64(100 * 24 * time.Hour))
	if _, err := e.Service.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if s, reason, _, _ := e.peer(t, phone.ID); s != wgbot.PeerDisabled || reason != nil {
		t.Fatalf("after expiry the phone is %s (reason %v), want disabled for the expiry", s, reason)
	}
	if r := e.enforce(t); r.Enabled != 0 {
		t.Fatalf("the quota check turned an expired subscription's device on: %+v", r)
	}
	e.checkQuotaInvariants(t)
}

// checkQuotaInvariants: a device off for the quota belongs to a live
// subscription, and every held address is one device's.
func (e *quotaEnv) checkQuotaInvariants(t *testing.T) {
	t.Helper()
	if n := count(t, e.Pool, `SELECT count(*) FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
		WHERE p.status = 'disabled' AND p.disabled_reason = 'quota' AND s.status <> 'active'`); n != 0 {
		t.Fatalf("%d devices off for the quota outside a live subscription", n)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM (SELECT 1 FROM peers WHERE status <> 'revoked' GROUP BY server_id, ip HAVING count(*) > 1) d`); n != 0 {
		t.Fatalf("%d addresses held twice", n)
	}
}

// quotaChildren are this file's child roles.
var quotaChildren = map[string]func(context.Context, *quotaEnv, int) error{
	// check runs the quota check from 4 goroutines at CHILD_START and
	// writes the notices it queued and the devices it switched off to
	// CHILD_OUT.
	"quota-check": func(ctx context.Context, e *quotaEnv, index int) error {
		r, err := checkAll(ctx, e, 4, childStart())
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(os.Getenv("CHILD_OUT"), strconv.Itoa(index)), fmt.Appendf(nil, "%d %d", r.Notices, r.Disabled), 0o600)
	},
	"topup": func(ctx context.Context, e *quotaEnv, _ int) error {
		orderID, _ := strconv.ParseInt(os.Getenv("CHILD_ORDER"), 10, 64)
		amount, _ := strconv.ParseInt(os.Getenv("CHILD_AMOUNT"), 10, 64)
		_, err := topUpAll(ctx, e, 3, orderID, amount, childStart())
		return err
	},
}

func runQuotaChild(ctx context.Context, role string) (bool, error) {
	run, ok := quotaChildren[role]
	if !ok {
		return false, nil
	}
	start, _ := strconv.ParseInt(os.Getenv("CHILD_CLOCK"), 10, 64)
	e, err := buildQuotaEnv(ctx, os.Getenv("CHILD_DB"), os.Getenv("CHILD_SUBNET"), time.Unix(0, start))
	if err != nil {
		return true, err
	}
	defer e.Pool.Close()
	index, _ := strconv.Atoi(os.Getenv("CHILD_INDEX"))
	return true, run(ctx, e, index)
}

// checkAll runs the quota check n times at once from start, and adds up
// what they did.
func checkAll(ctx context.Context, e *quotaEnv, n int, start time.Time) (wgbot.QuotaCheck, error) {
	time.Sleep(time.Until(start))
	var mu sync.Mutex
	var sum wgbot.QuotaCheck
	var first error
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range 3 {
				r, err := e.Service.EnforceQuotas(ctx)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				sum.Notices += r.Notices
				sum.Disabled += r.Disabled
				sum.Enabled += r.Enabled
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return sum, first
}

// topUpAll delivers the one top-up payment n times at once from start;
// it returns how many of those credited it.
func topUpAll(ctx context.Context, e *quotaEnv, n int, orderID, amount int64, start time.Time) (int, error) {
	time.Sleep(time.Until(start))
	var credited atomic.Int32
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := e.Service.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "charge-topup",
				OrderID: orderID, Amount: amount, Currency: "XTR"})
			switch {
			case err != nil:
				errs <- err
			case !res.Duplicate:
				credited.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	return int(credited.Load()), <-errs
}

// TestQuotaNoticesOnceUnderConcurrentChecks: 20 subscriptions, 10 past
// 80% and 10 past 100%, checked at the same moment by 4 goroutines here
// and 4 in each of two other processes, three passes each: every notice
// is queued exactly once (10 at 80%, 10 at 100%, the 80% of those past
// 100% recorded and not told after it), and each device is switched off
// once.
func TestQuotaNoticesOnceUnderConcurrentChecks(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	e := newQuotaEnv(t, "10.193.0.0/24", start)
	for i := range 20 {
		u, err := e.Service.Register(ctx, wgbot.User{TelegramID: int64(1000 + i)}, "")
		if err != nil {
			t.Fatal(err)
		}
		p := *e.buy(t, u, "capped", "c"+strconv.Itoa(i)).NewPeer
		used := int64(4_500_000)
		if i%2 == 1 {
			used = 5_500_000
		}
		e.push(t, p, used, 0)
	}
	out := t.TempDir()
	at := time.Now().Add(2 * time.Second)
	children := startChildren(t, 2, "quota-check", "CHILD_DB="+e.URL, "CHILD_SUBNET=10.193.0.0/24", "CHILD_OUT="+out,
		"CHILD_CLOCK="+strconv.FormatInt(e.now().UnixNano(), 10), "CHILD_START="+strconv.FormatInt(at.UnixNano(), 10))
	here, err := checkAll(ctx, e, 4, at)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, children)
	notices, disabled := here.Notices, here.Disabled
	for i := range 2 {
		raw, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		var n, d int
		if _, err := fmt.Sscan(string(raw), &n, &d); err != nil {
			t.Fatal(err)
		}
		notices, disabled = notices+n, disabled+d
	}
	if notices != 20 || disabled != 10 || here.Enabled != 0 {
		t.Fatalf("all checks queued %d notices and switched %d devices off (here: %+v); want 20 and 10", notices, disabled, here)
	}
	if w, f := e.noticeJobs(t, wgbot.QuotaWarn), e.noticeJobs(t, wgbot.QuotaFull); w != 10 || f != 10 {
		t.Fatalf("notice jobs: %d at 80%%, %d at 100%%; want 10 each", w, f)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM quota_notices`); n != 30 {
		t.Fatalf("%d notices recorded, want 30", n)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM peers WHERE disabled_reason = 'quota'`); n != 10 {
		t.Fatalf("%d devices off, want 10", n)
	}
	e.checkQuotaInvariants(t)
}

// TestTopUpOnce: one top-up payment delivered nine times at once (three
// goroutines here, three in each of two other processes, as a provider
// retrying would) is credited once: one ledger row, one top-up, the
// allowance raised by its 5 MB once, the devices back on.
func TestTopUpOnce(t *testing.T) {
	ctx := context.Background()
	e := newQuotaEnv(t, "10.194.0.0/24", time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	u, _ := e.Service.Register(ctx, wgbot.User{TelegramID: 902}, "")
	phone := *e.buy(t, u, "capped", "c-plan").NewPeer
	e.push(t, phone, 5_200_000, 0)
	if r := e.enforce(t); r.Disabled != 1 {
		t.Fatalf("over quota: %+v", r)
	}
	o, err := e.Service.CreateOrder(ctx, u, "plus5", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	if !o.TopUp || o.Traffic != quotaBytes || o.Days != 0 {
		t.Fatalf("top-up order: %+v", o)
	}
	at := time.Now().Add(2 * time.Second)
	children := startChildren(t, 2, "topup", "CHILD_DB="+e.URL, "CHILD_SUBNET=10.194.0.0/24",
		"CHILD_CLOCK="+strconv.FormatInt(e.now().UnixNano(), 10), "CHILD_START="+strconv.FormatInt(at.UnixNano(), 10),
		"CHILD_ORDER="+strconv.FormatInt(o.ID, 10), "CHILD_AMOUNT="+strconv.FormatInt(o.Amount, 10))
	here, err := topUpAll(ctx, e, 3, o.ID, o.Amount, at)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, children)
	if here > 1 {
		t.Fatalf("%d deliveries here credited the one top-up", here)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM payments WHERE provider_payment_id = 'charge-topup' AND days = 0`); n != 1 {
		t.Fatalf("%d ledger rows for the top-up, want 1", n)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM traffic_topups`); n != 1 {
		t.Fatalf("%d top-ups recorded, want 1", n)
	}
	if q, _ := e.Service.Quota(ctx, u); q.Allowance != 2*quotaBytes {
		t.Fatalf("allowance %d after the top-up, want %d", q.Allowance, 2*quotaBytes)
	}
	if s, _, ip, _ := e.peer(t, phone.ID); s != wgbot.PeerActive || ip != phone.IP {
		t.Fatalf("the phone after the top-up: %s at %s", s, ip)
	}
	if n := count(t, e.Pool, `SELECT count(*) FROM river_job WHERE kind = 'payment_credited'`); n != 2 {
		t.Fatalf("%d payment notices, want the plan's and the top-up's", n)
	}
	// A refund takes the top-up back; the next check switches the device off.
	if _, err := e.Service.Refund(ctx, "stars", "charge-topup"); err != nil {
		t.Fatal(err)
	}
	if r := e.enforce(t); r.Disabled != 1 {
		t.Fatalf("after the top-up's refund: %+v, want the device off again", r)
	}
	e.checkQuotaInvariants(t)
}

// TestGiftCarriesQuota: a gift of a plan with a monthly quota gives the
// friend who opens it that quota, as buying the plan would; a gift of an
// unlimited plan gives none.
func TestGiftCarriesQuota(t *testing.T) {
	ctx := context.Background()
	e := newQuotaEnv(t, "10.197.0.0/24", time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC))
	buyer, err := e.Service.Register(ctx, wgbot.User{TelegramID: 9701, Language: "en"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		plan  string
		quota int64
	}{{"capped", quotaBytes}, {"unlimited", 0}} {
		order, err := e.Service.CreateGiftOrder(ctx, buyer, c.plan, "stars", "XTR")
		if err != nil {
			t.Fatal(err)
		}
		paid, err := e.Service.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "gift-" + c.plan, OrderID: order.ID,
			Amount: order.Amount, Currency: "XTR"})
		if err != nil || paid.Gift == nil {
			t.Fatalf("gift of %s: %+v, %v", c.plan, paid, err)
		}
		friend, err := e.Service.Register(ctx, wgbot.User{TelegramID: int64(9710 + i), Language: "en"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Service.RedeemGift(ctx, friend, paid.Gift.Token); err != nil {
			t.Fatal(err)
		}
		if q := count(t, e.Pool, `SELECT traffic_quota FROM subscriptions WHERE user_id = $1 AND status = 'active'`, friend.ID); int64(q) != c.quota {
			t.Errorf("a gift of %s gave a quota of %d bytes, want %d", c.plan, q, c.quota)
		}
	}
}
