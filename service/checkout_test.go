package service_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/secret"
	"wgbot/service"
)

// TestCheckoutOfClosedOrder: an order canceled before its checkout was
// made gets none; the user's open order for the plan (a new one) gets it
// instead. A paid order gets no checkout at all: a conflict.
func TestCheckoutOfClosedOrder(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.36.0.0/24", nil)
	u := e.user(t, 1)
	canceled, err := e.svc.CreateOrder(ctx, u, "month", "cryptopay", "USD")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CancelOrder(ctx, canceled.ID); err != nil {
		t.Fatal(err)
	}
	var started []wgbot.Order
	start := func(o wgbot.Order) (string, error) {
		started = append(started, o)
		return "https://pay.example.com/" + o.Plan, nil
	}
	url, err := e.svc.Checkout(ctx, canceled.ID, time.Second, start)
	if err != nil || url == "" {
		t.Fatalf("checkout of a canceled order: %q, %v", url, err)
	}
	if len(started) != 1 || started[0].ID == canceled.ID || started[0].Status != wgbot.OrderPending ||
		started[0].Plan != "month" || started[0].Amount != canceled.Amount {
		t.Fatalf("checkouts started for %+v; want one, for a new pending month order", started)
	}
	var status, checkoutURL string
	if err := e.pool.QueryRow(ctx, `SELECT status, checkout_url FROM orders WHERE id = $1`, canceled.ID).Scan(&status, &checkoutURL); err != nil {
		t.Fatal(err)
	}
	if status != wgbot.OrderCanceled || checkoutURL != "" {
		t.Errorf("the canceled order is %s with checkout %q; want canceled, none", status, checkoutURL)
	}

	paid, err := e.svc.CreateOrder(ctx, u, "year", "cryptopay", "USD")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PayOrder(ctx, service.Payment{Provider: "cryptopay", ProviderPaymentID: "p1", OrderID: paid.ID,
		Amount: paid.Amount, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	started = nil
	if _, err := e.svc.Checkout(ctx, paid.ID, time.Second, start); wgbot.ErrorReason(err) != "order_closed" || len(started) != 0 {
		t.Fatalf("checkout of a paid order: %v, %d started; want order_closed, none", err, len(started))
	}
}

// TestCheckoutLeaseOnDatabaseClock: a process whose clock runs minutes
// ahead does not take over a checkout another process is still creating:
// the lease is kept on the database's clock.
func TestCheckoutLeaseOnDatabaseClock(t *testing.T) {
	ctx := context.Background()
	e := setup(t, "10.37.0.0/24", nil)
	u := e.user(t, 1)
	o, err := e.svc.CreateOrder(ctx, u, "month", "cryptopay", "USD")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secret.NewKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := e.store.Server(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	ahead := service.New(e.store, keys, nil, service.Config{Server: srv, Plans: service.DefaultPlans()},
		func() time.Time { return time.Now().Add(2 * time.Minute) }, slog.New(slog.NewTextHandler(io.Discard, nil)))

	inStart, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.Checkout(ctx, o.ID, time.Second, func(o wgbot.Order) (string, error) {
			close(inStart)
			<-release
			return "https://pay.example.com/1", nil
		})
		done <- err
	}()
	<-inStart
	var second atomic.Int32
	_, err = ahead.Checkout(ctx, o.ID, 500*time.Millisecond, func(wgbot.Order) (string, error) {
		second.Add(1)
		return "https://pay.example.com/2", nil
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if second.Load() != 0 || wgbot.ErrorReason(err) != "checkout_busy" {
		t.Fatalf("a process with its clock ahead: %d checkouts started, %v; want none, checkout_busy", second.Load(), err)
	}
}
