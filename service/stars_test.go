package service_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/service"
)

// chargeAll delivers the recurring Stars charge chargeID of orderID's
// subscription n times at once at start, as Telegram redelivering it
// would; it returns how many deliveries credited it.
func chargeAll(ctx context.Context, e *env, n int, orderID, amount int64, chargeID string, expires, start time.Time) (int, error) {
	time.Sleep(time.Until(start))
	var credited atomic.Int32
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: chargeID,
				OrderID: orderID, Amount: amount, Currency: "XTR", Recurring: &wgbot.Recurring{ExpiresAt: expires}})
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

// TestRecurringChargeOnce: a Stars subscription's first charge starts 30
// days and the subscription record; its renewal, delivered eight times at
// once (four goroutines here, two in each of two other processes), is one
// ledger row under its charge id and one 30-day extension; a late
// redelivery of the first charge moves nothing back.
func TestRecurringChargeOnce(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.182.0.0/24", nil, revenueStore)
	user := e.user(t, 1)
	order, err := e.svc.CreateOrder(ctx, user, "month", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	first := e.svc.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	res, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "charge-first", OrderID: order.ID,
		Amount: order.Amount, Currency: "XTR", Recurring: &wgbot.Recurring{First: true, ExpiresAt: first}})
	if err != nil || res.Duplicate {
		t.Fatalf("first charge: %+v, %v", res, err)
	}
	paidUntil := res.Subscription.ExpiresAt
	star, err := e.svc.StarSubscription(ctx, user)
	if err != nil || star.ChargeID != "charge-first" || !star.RenewsAt.Equal(first) || star.Canceled {
		t.Fatalf("after the first charge: %+v, %v", star, err)
	}

	second := first.Add(30 * 24 * time.Hour)
	start := time.Now().Add(2 * time.Second)
	children := startChildren(t, 2, "renew", "CHILD_DB="+e.url, "CHILD_SUBNET=10.182.0.0/24",
		"CHILD_ORDER="+strconv.FormatInt(order.ID, 10), "CHILD_AMOUNT="+strconv.FormatInt(order.Amount, 10),
		"CHILD_UNTIL="+strconv.FormatInt(second.Unix(), 10), "CHILD_START="+strconv.FormatInt(start.UnixNano(), 10))
	here, err := chargeAll(ctx, e, 4, order.ID, order.Amount, "charge-renewal", second, start)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, children)
	if here > 1 {
		t.Fatalf("%d deliveries here credited the one renewal", here)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM payments WHERE provider = 'stars' AND status = 'credited' AND days = 30`); n != 2 {
		t.Fatalf("want two charges in the ledger, got %d", n)
	}
	if got := e.subscription(t, user).ExpiresAt; !got.Equal(paidUntil.AddDate(0, 0, 30)) {
		t.Fatalf("the renewal should add exactly 30 days, to %s; the subscription ends %s", paidUntil.AddDate(0, 0, 30), got)
	}

	// The first charge again, late: a duplicate that moves nothing back.
	res, err = e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "charge-first", OrderID: order.ID,
		Amount: order.Amount, Currency: "XTR", Recurring: &wgbot.Recurring{First: true, ExpiresAt: first}})
	if err != nil || !res.Duplicate {
		t.Fatalf("redelivered first charge: %+v, %v", res, err)
	}
	star, err = e.svc.StarSubscription(ctx, user)
	if err != nil || star.ChargeID != "charge-first" || !star.RenewsAt.Equal(second) {
		t.Fatalf("after the renewal: %+v, %v; want it renewing at %s", star, err, second)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM star_subscriptions`); n != 1 {
		t.Fatalf("want one Stars subscription, got %d", n)
	}
	e.checkInvariants(t)
}

// TestStarRenewalToggle: turning renewal off asks Telegram first and
// records it only once accepted; a refused call changes nothing; a second
// press asks nothing; on again clears it.
func TestStarRenewalToggle(t *testing.T) {
	ctx := context.Background()
	e := setupWith(t, "10.183.0.0/24", nil, revenueStore)
	user := e.user(t, 1)
	if _, err := e.svc.SetStarRenewal(ctx, user, true, nil); !errors.Is(err, wgbot.ErrNoStarSubscription) {
		t.Fatalf("no subscription: want ErrNoStarSubscription, got %v", err)
	}
	order, err := e.svc.CreateOrder(ctx, user, "month", "stars", "XTR")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PayOrder(ctx, service.Payment{Provider: "stars", ProviderPaymentID: "c1", OrderID: order.ID, Amount: order.Amount,
		Currency: "XTR", Recurring: &wgbot.Recurring{First: true, ExpiresAt: e.svc.Now().AddDate(0, 0, 30)}}); err != nil {
		t.Fatal(err)
	}
	var asked []string
	edit := func(fail error) func(context.Context, string) error {
		return func(_ context.Context, charge string) error {
			asked = append(asked, charge)
			return fail
		}
	}
	if _, err := e.svc.SetStarRenewal(ctx, user, true, edit(wgbot.ErrApplyFailed)); err == nil {
		t.Fatal("a refused cancel should fail")
	}
	if st, _ := e.svc.StarSubscription(ctx, user); st.Canceled {
		t.Fatal("a refused cancel was recorded")
	}
	for range 2 {
		st, err := e.svc.SetStarRenewal(ctx, user, true, edit(nil))
		if err != nil || !st.Canceled {
			t.Fatalf("cancel: %+v, %v", st, err)
		}
	}
	if len(asked) != 2 || asked[1] != "c1" {
		t.Fatalf("Telegram asked %v; want the failed call and one cancel of c1", asked)
	}
	st, err := e.svc.SetStarRenewal(ctx, user, false, edit(nil))
	if err != nil || st.Canceled {
		t.Fatalf("re-enable: %+v, %v", st, err)
	}
}
