package payment_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/metrics"
	"wgbot/payment"
	"wgbot/payment/cryptopay/cryptopaytest"
)

// YooKassa refuses a redirect checkout without a return URL, so an adapter
// without one would fail every payment: it is refused at start-up.
func TestYooKassaNeedsReturnURL(t *testing.T) {
	e := setup(t)
	for _, returnURL := range []string{"", "t.me/wgbot_test_bot", "ftp://example.com/"} {
		_, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: "http://127.0.0.1:1", ShopID: "shop-1", SecretKey: "test_secret",
			ReturnURL: returnURL}, e.svc, metrics.New(nil), e.log)
		if err == nil || !strings.Contains(err.Error(), "YOOKASSA_RETURN_URL") {
			t.Errorf("return URL %q: err = %v, want one naming YOOKASSA_RETURN_URL", returnURL, err)
		}
	}
}

// checkout is what the Pay button does: open the user's order for the plan
// and show its checkout.
type checkout interface {
	Provider() string
	Currency() string
	Start(ctx context.Context, order wgbot.Order, user wgbot.User) (string, error)
}

func pressPay(e *env, co checkout, plan string) (wgbot.Order, string, error) {
	ctx := context.Background()
	order, err := e.svc.CreateOrder(ctx, e.user, plan, co.Provider(), co.Currency())
	if err != nil {
		return order, "", err
	}
	url, err := e.svc.Checkout(ctx, order.ID, 10*time.Second, func(o wgbot.Order) (string, error) { return co.Start(ctx, o, e.user) })
	return order, url, err
}

const cryptoToken = "12345:AAcryptopaytesttoken"

func newCryptoPayOnly(t *testing.T, e *env) (*payment.CryptoPay, *cryptopaytest.Server) {
	emu := cryptopaytest.NewServer(cryptoToken)
	t.Cleanup(emu.Close)
	c, err := payment.NewCryptoPay(payment.CryptoPayConfig{BaseURL: emu.BaseURL(), Token: cryptoToken, Fiat: "USD"}, e.svc, metrics.New(nil), e.log)
	if err != nil {
		t.Fatal(err)
	}
	return c, emu
}

// Twenty Pay presses at once (several processes' worth of connections)
// make one order and one provider checkout, and all show its URL.
func TestPayPressesMakeOneCheckout(t *testing.T) {
	for _, provider := range []string{"yookassa", "cryptopay"} {
		t.Run(provider, func(t *testing.T) {
			e := setup(t)
			var co checkout
			var checkouts func() int
			if provider == "yookassa" {
				y, emu := newYooKassa(t, e)
				co, checkouts = y, func() int { return len(emu.Payments()) }
			} else {
				c, emu := newCryptoPayOnly(t, e)
				co, checkouts = c, func() int { return len(emu.Invoices()) }
			}
			urls := make(chan string, 20)
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					_, url, err := pressPay(e, co, "month")
					if err != nil {
						t.Errorf("press: %v", err)
					}
					urls <- url
				})
			}
			wg.Wait()
			close(urls)
			first := <-urls
			for url := range urls {
				if url != first || url == "" {
					t.Fatalf("presses showed %q and %q", first, url)
				}
			}
			if n := e.count(t, `SELECT count(*) FROM orders`); n != 1 {
				t.Errorf("%d orders, want 1", n)
			}
			if n := checkouts(); n != 1 {
				t.Errorf("%d provider checkouts, want 1", n)
			}
		})
	}
}

// Crypto Pay has no idempotence key: a createInvoice whose answer was lost
// made an invoice all the same, and the retried checkout of the order
// reuses it instead of making a second.
func TestCryptoPayRetryAfterLostAnswerReusesTheInvoice(t *testing.T) {
	e := setup(t)
	c, emu := newCryptoPayOnly(t, e)
	emu.DropNextAnswers(1)
	order, _, err := pressPay(e, c, "month")
	if wgbot.ErrorCode(err) != wgbot.EUnavailable {
		t.Fatalf("checkout with a lost answer: %v, want unavailable", err)
	}
	if n := len(emu.Invoices()); n != 1 {
		t.Fatalf("the lost createInvoice made %d invoices", n)
	}
	again, url, err := pressPay(e, c, "month")
	if err != nil || again.ID != order.ID {
		t.Fatalf("retry: order %d (first %d), %v", again.ID, order.ID, err)
	}
	invs := emu.Invoices()
	if len(invs) != 1 || url != invs[0].BotInvoiceURL {
		t.Fatalf("retry made %d invoices; url %q, invoice %+v", len(invs), url, invs)
	}
	if _, url2, err := pressPay(e, c, "month"); err != nil || url2 != url || len(emu.Invoices()) != 1 {
		t.Fatalf("third press: %q, %v, %d invoices", url2, err, len(emu.Invoices()))
	}
	// The reused invoice is the one that gets paid and credited.
	if err := emu.Pay(invs[0].InvoiceID); err != nil {
		t.Fatal(err)
	}
	body, sig := emu.SignedBody(invs[0].InvoiceID)
	if code := deliver(c, "127.0.0.1:1", body, map[string]string{"crypto-pay-api-signature": sig}); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'paid' AND provider_ref = '`+itoa(invs[0].InvoiceID)+`'`); n != 1 {
		t.Fatal("the reused invoice was not credited to its order")
	}
}

// A user keeps at most a few pending orders: a new one past the limit
// cancels the oldest; a failed checkout is tried again on the next press.
func TestOpenOrdersPerUser(t *testing.T) {
	e := setup(t)
	c, emu := newCryptoPayOnly(t, e)
	y, _ := newYooKassa(t, e)
	var first wgbot.Order
	for i, press := range []struct {
		co   checkout
		plan string
	}{{c, "month"}, {c, "quarter"}, {y, "month"}, {y, "quarter"}} {
		o, _, err := pressPay(e, press.co, press.plan)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = o
		}
	}
	if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'pending'`); n != 3 {
		t.Errorf("%d pending orders, want 3", n)
	}
	if n := e.count(t, `SELECT count(*) FROM orders WHERE status = 'canceled' AND id = `+itoa(first.ID)); n != 1 {
		t.Error("the oldest order was not the one canceled")
	}

	emu.FailNext(1, http.StatusInternalServerError)
	if _, _, err := pressPay(e, c, "year"); err == nil {
		t.Fatal("a failing provider opened a checkout")
	}
	if _, url, err := pressPay(e, c, "year"); err != nil || url == "" {
		t.Fatalf("the press after a failure: %q, %v", url, err)
	}
}

// The checkout of one order is created once even when presses handled at
// the same moment (by several processes) all find it missing: the first
// leases the creation, the others wait for its URL. A failed attempt
// releases the lease and tells the next one it may have left a checkout.
func TestCheckoutCreatedOnce(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	order, err := e.svc.CreateOrder(ctx, e.user, "month", "cryptopay", "USD")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tries []int
	start := func(fail bool) func(o wgbot.Order) (string, error) {
		return func(o wgbot.Order) (string, error) {
			mu.Lock()
			tries = append(tries, o.CheckoutTries)
			mu.Unlock()
			time.Sleep(300 * time.Millisecond) // a provider taking its time
			if fail {
				return "", wgbot.Errorf(wgbot.EUnavailable, "provider_unavailable", "lost answer")
			}
			return "https://pay.example.com/" + itoa(o.ID), nil
		}
	}
	if _, err := e.svc.Checkout(ctx, order.ID, time.Second, start(true)); err == nil {
		t.Fatal("a failed start returned no error")
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			url, err := e.svc.Checkout(ctx, order.ID, 10*time.Second, start(false))
			if err != nil || url != "https://pay.example.com/"+itoa(order.ID) {
				t.Errorf("checkout: %q, %v", url, err)
			}
		})
	}
	wg.Wait()
	if len(tries) != 2 || tries[0] != 1 || tries[1] != 2 {
		t.Fatalf("start called with tries %v, want [1 2]: once failing, once for twenty presses", tries)
	}
}
