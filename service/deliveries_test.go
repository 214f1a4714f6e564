package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/jobs/jobargs"
	"wgbot/secret"
	"wgbot/service"
)

// deliveryService is e's service with a short delivery lease, on e's store.
func deliveryService(t *testing.T, e *env, apply service.Provisioner, lease time.Duration) *service.Service {
	t.Helper()
	srv, err := e.store.Server(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secret.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return service.New(e.store, keys, apply, service.Config{
		Server: srv, Plans: service.DefaultPlans(), TrialDays: 3,
		ClientRoutes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, ApplyWait: time.Second, DeliveryLease: lease,
	}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// notices records what DeliverIssued sent.
type notices struct {
	mu   sync.Mutex
	sent []service.DeviceNotice
	fail error
}

func (n *notices) DeviceIssued(_ context.Context, d service.DeviceNotice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail != nil {
		return n.fail
	}
	n.sent = append(n.sent, d)
	return nil
}

func (n *notices) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sent)
}

// TestSendIssuedClaims: one sender at a time; a failed send is released at
// once; a sender that died holds the delivery only until its lease lapses;
// a delivered device is never sent again, nor taken back. The step that
// must see another sender's claim uses a long lease, so a slow database
// (a loaded machine, -race) cannot let it lapse first; only the lapse step
// uses a short one.
func TestSendIssuedClaims(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.70.0.0/24", nil)
	svc := deliveryService(t, e, nil, time.Minute)
	held, err := svc.IssueTrial(ctx, e.user(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	lapsing, err := svc.IssueTrial(ctx, e.user(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	failed := errors.New("telegram down")
	if sent, err := svc.SendIssued(ctx, held.Peer.ID, func(context.Context) error { return failed }); sent || !errors.Is(err, failed) {
		t.Fatalf("failed send: sent %v, err %v", sent, err)
	}
	// A sender that claims and dies (it never finishes), holding a long lease.
	if _, ok, err := e.store.ClaimDelivery(ctx, held.Peer.ID, time.Minute); !ok || err != nil {
		t.Fatalf("claim after a failed send: %v %v (the failure must release it)", ok, err)
	}
	sends := 0
	send := func(context.Context) error { sends++; return nil }
	if sent, err := svc.SendIssued(ctx, held.Peer.ID, send); sent || err != nil || sends != 0 {
		t.Fatalf("sent while another sender held the claim: %v %v", sent, err)
	}
	// A sender that dies holding a short lease: after it lapses, the next
	// sender sends.
	const short = 300 * time.Millisecond
	if _, ok, err := e.store.ClaimDelivery(ctx, lapsing.Peer.ID, short); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	time.Sleep(short + 200*time.Millisecond)
	if sent, err := svc.SendIssued(ctx, lapsing.Peer.ID, send); !sent || err != nil || sends != 1 {
		t.Fatalf("after the lease: sent %v, err %v, %d sends", sent, err, sends)
	}
	if sent, err := svc.SendIssued(ctx, lapsing.Peer.ID, send); sent || err != nil || sends != 1 {
		t.Fatalf("sent a delivered config again: %v %v", sent, err)
	}
	if _, err := e.store.DeletePeer(ctx, lapsing.Peer.ID, true); !errors.Is(err, wgbot.ErrPeerNotFound) {
		t.Fatalf("a delivered device was taken back: %v", err)
	}
}

// TestDeliverIssued: the job's step leaves a young delivery to the issuing
// request, waits for WireGuard, sends once, and does nothing for a device
// taken back.
func TestDeliverIssued(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	wgDown := false
	apply := provisionFunc(func(context.Context, wgbot.Change) error {
		mu.Lock()
		defer mu.Unlock()
		if wgDown {
			return errors.New("wg0 is down")
		}
		return nil
	})
	e := setup(t, "10.71.0.0/24", nil)
	svc := deliveryService(t, e, apply, time.Second)
	d, err := svc.IssueTrial(ctx, e.user(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	args := jobargs.DeviceIssued{PublicKey: d.Peer.PublicKey, Reason: jobargs.IssuedTrial}
	n := &notices{}
	var notDue *service.NotDueError
	if err := svc.DeliverIssued(ctx, args, n); !errors.As(err, &notDue) || notDue.Wait <= 0 || n.count() != 0 {
		t.Fatalf("a fresh delivery (the request's to send): %v, %d sent", err, n.count())
	}
	mustExec(t, e.pool, `UPDATE peers SET created_at = now() - interval '1 minute'`)
	mu.Lock()
	wgDown = true
	mu.Unlock()
	if err := svc.DeliverIssued(ctx, args, n); !errors.Is(err, wgbot.ErrApplyFailed) || n.count() != 0 {
		t.Fatalf("WireGuard down: %v, %d sent (want a retry, nothing sent)", err, n.count())
	}
	mu.Lock()
	wgDown = false
	mu.Unlock()
	for range 3 {
		if err := svc.DeliverIssued(ctx, args, n); err != nil {
			t.Fatal(err)
		}
	}
	if n.count() != 1 {
		t.Fatalf("%d configs sent, want 1", n.count())
	}
	got := n.sent[0]
	if got.User.TelegramID != 1 || got.Reason != service.IssuedTrial || got.Delivery.Peer.ID != d.Peer.ID || string(got.Delivery.Config) != string(d.Config) {
		t.Errorf("sent %+v", got)
	}
	// A job for a device that no longer exists has nothing to do.
	if err := svc.DeliverIssued(ctx, jobargs.DeviceIssued{PublicKey: "gone", Reason: jobargs.IssuedTrial}, n); err != nil || n.count() != 1 {
		t.Fatalf("missing device: %v", err)
	}
}

// TestSendIssuedOnceAcrossProcesses: 4 processes × 8 goroutines race to
// send each of 100 new devices' configs; each goes out exactly once.
func TestSendIssuedOnceAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.72.0.0/24", nil)
	for i := range 100 {
		if _, err := e.svc.IssueTrial(ctx, e.user(t, int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, e.pool, `CREATE TABLE test_sends (peer_id bigint NOT NULL, sender text NOT NULL)`)
	waitAll(t, startChildren(t, 4, "send-issued", "CHILD_DB="+e.url, "CHILD_SUBNET=10.72.0.0/24"))
	if n := count(t, e.pool, `SELECT count(*) FROM test_sends`); n != 100 {
		t.Errorf("%d sends for 100 devices", n)
	}
	if n := count(t, e.pool, `SELECT count(DISTINCT peer_id) FROM test_sends`); n != 100 {
		t.Errorf("%d devices sent, want 100", n)
	}
	if n := count(t, e.pool, `SELECT count(DISTINCT split_part(sender, '/', 1)) FROM test_sends`); n < 2 {
		t.Logf("only %d process(es) won a claim", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM peers WHERE delivered_at IS NULL OR delivery_claimed_until IS NOT NULL`); n != 0 {
		t.Errorf("%d devices not recorded as delivered", n)
	}
}

// sendIssuedChild is the child role of TestSendIssuedOnceAcrossProcesses.
func sendIssuedChild(ctx context.Context, e *env) error {
	rows, err := e.pool.Query(ctx, `SELECT id FROM peers`)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			order := append([]int64(nil), ids...)
			rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			sender := strconv.Itoa(os.Getpid()) + "/" + strconv.Itoa(g)
			for _, id := range order {
				_, err := e.svc.SendIssued(ctx, id, func(ctx context.Context) error {
					_, err := e.pool.Exec(ctx, `INSERT INTO test_sends (peer_id, sender) VALUES ($1, $2)`, id, sender)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
