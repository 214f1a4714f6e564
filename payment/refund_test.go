package payment_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"wgbot"
	"wgbot/payment/yookassa"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/service"
)

// refundPart refunds part of a payment in the emulator, as the shop owner
// would in YooKassa's dashboard; part 0 refunds all of it.
func refundPart(t *testing.T, emu *yookassatest.Server, id string, part int64) {
	t.Helper()
	p, _ := emu.Payment(id)
	amount := p.Amount
	if part > 0 {
		amount = yookassa.AmountFromMinor(part, p.Amount.Currency)
	}
	if _, err := emu.Refund(id, amount); err != nil {
		t.Fatal(err)
	}
}

func mustDeliver(t *testing.T, y http.Handler, body []byte, want int) {
	t.Helper()
	if c := deliver(y, yooSource, body, nil); c != want {
		t.Fatalf("delivery answered %d, want %d", c, want)
	}
}

// YooKassa keeps a refunded payment "succeeded" and redelivers notices for a
// day, so the notices of one payment arrive in any order.
func TestYooKassaRefundOrdering(t *testing.T) {
	t.Run("refund notice before the payment notice: never credited", func(t *testing.T) {
		e := setup(t)
		y, emu := newYooKassa(t, e)
		order, id := startYooKassa(t, e, y, emu)
		emu.Succeed(id)
		emu.FailNext(1, http.StatusInternalServerError) // the first payment.succeeded cannot be verified
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusServiceUnavailable)
		refundPart(t, emu, id, 0)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		for range 3 { // YooKassa's retries of the payment notice
			mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		}
		if n := e.count(t, `SELECT count(*) FROM subscriptions`) + e.count(t, `SELECT count(*) FROM peers`); n != 0 {
			t.Fatalf("a refunded payment gave access (%d subscription and peer rows)", n)
		}
		if n := e.count(t, `SELECT count(*) FROM payments WHERE status = 'refunded' AND days = 0 AND flagged <> ''`); n != 1 {
			t.Fatalf("%d settled refunded payments recorded, want 1", n)
		}
		if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'refunded' AND id = `+itoa(order.ID)); n != 1 {
			t.Fatal("order not closed as refunded")
		}
	})
	t.Run("refund recorded before the credit: the credit is a duplicate", func(t *testing.T) {
		// The fetch of payment.succeeded ran before the refund, its credit
		// after the refund notice was recorded: nothing may be credited.
		e := setup(t)
		y, emu := newYooKassa(t, e)
		order, id := startYooKassa(t, e, y, emu)
		emu.Succeed(id)
		refundPart(t, emu, id, 0)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		res, err := e.svc.PayOrder(context.Background(), service.Payment{Provider: "yookassa", ProviderPaymentID: id,
			OrderID: order.ID, Amount: order.Amount, Currency: order.Currency})
		if err != nil || !res.Duplicate {
			t.Fatalf("credit after the recorded refund: duplicate = %v, err = %v; want a duplicate", res.Duplicate, err)
		}
		if n := e.count(t, `SELECT count(*) FROM subscriptions`); n != 0 {
			t.Fatal("credited after the refund was recorded")
		}
	})
	t.Run("normal order: credited, refunded, a redelivered payment notice changes nothing", func(t *testing.T) {
		e := setup(t)
		y, emu := newYooKassa(t, e)
		_, id := startYooKassa(t, e, y, emu)
		emu.Succeed(id)
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		if n := e.count(t, `SELECT count(*) FROM subscriptions WHERE status = 'active'`); n != 1 {
			t.Fatal("payment not credited")
		}
		refundPart(t, emu, id, 0)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		if n := e.count(t, `SELECT count(*) FROM subscriptions WHERE status = 'active'`); n != 0 {
			t.Fatal("access left after a full refund")
		}
		if n := e.count(t, `SELECT count(*) FROM payments WHERE status = 'refunded' AND days > 0`); n != 1 {
			t.Fatal("the credited payment is not marked refunded")
		}
	})
	t.Run("partial refund before the payment notice: no period granted", func(t *testing.T) {
		e := setup(t)
		y, emu := newYooKassa(t, e)
		order, id := startYooKassa(t, e, y, emu)
		emu.Succeed(id)
		refundPart(t, emu, id, order.Amount/2)
		// The refund notice is still on its way: the payment notice alone
		// must not grant the period.
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		if n := e.count(t, `SELECT count(*) FROM subscriptions`); n != 0 {
			t.Fatal("a partly refunded payment granted the full period")
		}
		if n := e.count(t, `SELECT count(*) FROM payments WHERE status = 'refunded' AND days = 0 AND flagged LIKE 'partly refunded%'`); n != 1 {
			t.Fatal("the partly refunded payment is not recorded and flagged for the operator")
		}
	})
	t.Run("refund notice for a payment with nothing refunded changes nothing", func(t *testing.T) {
		// A forged or premature refund.succeeded: the fetched payment shows
		// no refund, so it must neither settle the payment nor flag it.
		e := setup(t)
		y, emu := newYooKassa(t, e)
		_, id := startYooKassa(t, e, y, emu)
		emu.Succeed(id)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		if n := e.count(t, `SELECT count(*) FROM payments WHERE status = 'credited' AND flagged = ''`); n != 1 {
			t.Fatal("the payment was not credited cleanly after a refund notice with nothing refunded")
		}
	})
	t.Run("partial refund after the credit: period kept, flagged for the operator", func(t *testing.T) {
		e := setup(t)
		y, emu := newYooKassa(t, e)
		order, id := startYooKassa(t, e, y, emu)
		emu.Succeed(id)
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		refundPart(t, emu, id, order.Amount/2)
		mustDeliver(t, y, emu.NotificationBody("refund.succeeded", id), http.StatusOK)
		mustDeliver(t, y, emu.NotificationBody("payment.succeeded", id), http.StatusOK)
		if n := e.count(t, `SELECT count(*) FROM subscriptions WHERE status = 'active'`); n != 1 {
			t.Fatal("a partial refund ended access")
		}
		if n := e.count(t, `SELECT count(*) FROM payments WHERE status = 'credited' AND flagged LIKE 'partly refunded%'`); n != 1 {
			t.Fatal("the partly refunded credit is not flagged for the operator")
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A refund notice and a credit of the same payment racing each other end
// the same way whichever commits first: one refunded row, no access.
func TestRefundRacingCredit(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	const users = 20
	var wg sync.WaitGroup
	for i := range users {
		u, err := e.svc.Register(ctx, wgbot.User{TelegramID: int64(5000 + i), Language: "en"}, "")
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.svc.CreateOrder(ctx, u, "month", "yookassa", "RUB")
		if err != nil {
			t.Fatal(err)
		}
		p := service.Payment{Provider: "yookassa", ProviderPaymentID: "race-" + itoa(o.ID), OrderID: o.ID, Amount: o.Amount, Currency: o.Currency}
		wg.Go(func() {
			if _, err := e.svc.PayOrder(ctx, p); err != nil {
				t.Errorf("credit: %v", err)
			}
		})
		wg.Go(func() {
			if _, err := e.svc.SettleRefund(ctx, service.ProviderRefund{Payment: p, Refunded: p.Amount, Reverse: true}); err != nil {
				t.Errorf("refund: %v", err)
			}
		})
	}
	wg.Wait()
	if n := e.count(t, `SELECT count(*) FROM payments WHERE status = 'refunded' AND provider_payment_id LIKE 'race-%'`); n != users {
		t.Fatalf("%d refunded payments, want %d", n, users)
	}
	// A refund that waited for the credit it reverses may leave a
	// subscription ending at the credit's instant, already past.
	if n := e.count(t, `SELECT count(*) FROM subscriptions WHERE status = 'active' AND expires_at > now()`); n != 0 {
		t.Fatalf("%d users kept access after a whole refund", n)
	}
}
