package yookassatest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"wgbot/payment/yookassa"
	"wgbot/payment/yookassa/yookassatest"
)

func newEmulator(t *testing.T) *yookassatest.Server {
	t.Helper()
	emu := yookassatest.NewServer("123456", "test_secret")
	t.Cleanup(emu.Close)
	return emu
}

func newPayment(t *testing.T, emu *yookassatest.Server, key string) yookassa.Payment {
	t.Helper()
	p, err := emu.Client().CreatePayment(context.Background(), yookassa.CreatePaymentRequest{
		Amount:    yookassa.Amount{Value: "199.00", Currency: "RUB"},
		ReturnURL: "https://t.me/wgbot?start=paid",
		Metadata:  map[string]string{"order_id": key},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rawCreate posts a body the way a careless client might, to test what the
// emulator refuses.
func rawCreate(t *testing.T, emu *yookassatest.Server, body, key string, auth bool) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, emu.URL+"/v3/payments", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(emu.ShopID, emu.SecretKey)
	}
	if key != "" {
		req.Header.Set("Idempotence-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("error body %q is not YooKassa's error object: %v", raw, err)
		}
	}
	return resp.StatusCode, out
}

func TestAPIRefusals(t *testing.T) {
	t.Parallel()
	const good = `{"amount":{"value":"1.00","currency":"RUB"},"capture":true,"confirmation":{"type":"redirect","return_url":"https://x"}}`
	tests := []struct {
		name       string
		body, key  string
		auth       bool
		wantStatus int
		wantCode   string
		wantParam  string
	}{
		{"no credentials", good, "k", false, 401, "invalid_credentials", "Authorization"},
		{"no idempotence key", good, "", true, 400, "invalid_request", "Idempotence-Key"},
		{"key too long", good, strings.Repeat("k", 65), true, 400, "invalid_request", "Idempotence-Key"},
		{"not JSON", `amount=1`, "k", true, 400, "invalid_request", ""},
		{"unknown field", `{"amount":{"value":"1.00","currency":"RUB"},"confirmation":{"type":"redirect","return_url":"https://x"},"recept":{}}`, "k", true, 400, "invalid_request", ""},
		{"float amount", `{"amount":{"value":1.5,"currency":"RUB"},"confirmation":{"type":"redirect","return_url":"https://x"}}`, "k", true, 400, "invalid_request", ""},
		{"zero amount", `{"amount":{"value":"0.00","currency":"RUB"},"confirmation":{"type":"redirect","return_url":"https://x"}}`, "k", true, 400, "invalid_request", "amount.value"},
		{"no return url", `{"amount":{"value":"1.00","currency":"RUB"},"confirmation":{"type":"redirect"}}`, "k", true, 400, "invalid_request", "confirmation.return_url"},
		{"lower-case currency", `{"amount":{"value":"1.00","currency":"rub"},"confirmation":{"type":"redirect","return_url":"https://x"}}`, "k", true, 400, "invalid_request", "amount.currency"},
		{"accepted", good, "k", true, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := newEmulator(t)
			status, e := rawCreate(t, emu, tt.body, tt.key, tt.auth)
			if status != tt.wantStatus || e["code"] != tt.wantCode || e["parameter"] != tt.wantParam {
				t.Fatalf("got %d %v, want %d code=%s parameter=%s", status, e, tt.wantStatus, tt.wantCode, tt.wantParam)
			}
			if status != 200 && (e["type"] != "error" || e["id"] == "") {
				t.Fatalf("error object %v lacks type/id", e)
			}
			wantPayments := 0
			if status == 200 {
				wantPayments = 1
			}
			if n := len(emu.Payments()); n != wantPayments {
				t.Fatalf("%d payments exist, want %d", n, wantPayments)
			}
		})
	}
}

func TestIdempotenceIgnoresKeyOrderAndSpacing(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	a := `{"amount":{"value":"1.00","currency":"RUB"},"confirmation":{"type":"redirect","return_url":"https://x"}}`
	b := `{ "confirmation": {"return_url": "https://x", "type": "redirect"}, "amount": {"currency": "RUB", "value": "1.00"} }`
	if s, _ := rawCreate(t, emu, a, "same", true); s != 200 {
		t.Fatalf("first: %d", s)
	}
	if s, e := rawCreate(t, emu, b, "same", true); s != 200 {
		t.Fatalf("same request reformatted: %d %v", s, e)
	}
	if n := len(emu.Payments()); n != 1 {
		t.Fatalf("%d payments, want 1", n)
	}
}

func TestConcurrentSameKeyCreatesOnePayment(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	req := yookassa.CreatePaymentRequest{Amount: yookassa.Amount{Value: "5.00", Currency: "RUB"}, ReturnURL: "https://x"}
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Go(func() {
			p, err := c.CreatePayment(context.Background(), req, "one-order")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = p.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("ids differ: %v", ids)
		}
	}
	if n := len(emu.Payments()); n != 1 {
		t.Fatalf("%d payments, want 1", n)
	}
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	paid := newPayment(t, emu, "a")
	canceled := newPayment(t, emu, "b")
	if err := emu.Succeed(paid.ID); err != nil {
		t.Fatal(err)
	}
	if err := emu.Cancel(canceled.ID); err != nil {
		t.Fatal(err)
	}
	if err := emu.Succeed(canceled.ID); err == nil {
		t.Fatal("a canceled payment succeeded")
	}
	if err := emu.Cancel(paid.ID); err == nil {
		t.Fatal("a succeeded payment was canceled")
	}
	if err := emu.Succeed("nope"); err == nil {
		t.Fatal("an unknown payment succeeded")
	}
	if err := emu.SetStatus(paid.ID, "refunded"); err == nil {
		t.Fatal("SetStatus accepted an unknown status")
	}
	c, _ := emu.Payment(canceled.ID)
	if c.Status != yookassa.StatusCanceled || c.Paid || c.CancellationDetails == nil || c.Confirmation != nil {
		t.Fatalf("canceled payment = %+v", c)
	}
	if err := emu.SetStatus(canceled.ID, yookassa.StatusWaitingForCapture); err != nil {
		t.Fatal(err)
	}
	if c, _ := emu.Payment(canceled.ID); c.Status != yookassa.StatusWaitingForCapture || !c.Paid {
		t.Fatalf("after SetStatus: %+v", c)
	}
}

func TestPaymentReturnsACopy(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	p := newPayment(t, emu, "a")
	got, _ := emu.Payment(p.ID)
	got.Metadata["order_id"] = "tampered"
	again, _ := emu.Payment(p.ID)
	if again.Metadata["order_id"] != "a" {
		t.Fatal("mutating a returned payment changed the emulator's state")
	}
}

// webhook is the receiving side as wgbot is meant to build it: allow-list
// the sender, parse, then trust only the payment fetched back from the API.
func webhook(t *testing.T, emu *yookassatest.Server, allow *yookassa.IPAllowList, credited chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, err := yookassa.ClientIP(r, "")
		if err != nil || !allow.Allowed(ip) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		body, _ := io.ReadAll(r.Body)
		n, err := yookassa.ParseNotification(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p, err := emu.Client().GetPayment(r.Context(), n.ObjectID())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if p.Status == yookassa.StatusSucceeded {
			credited <- p.ID
		}
		w.WriteHeader(http.StatusOK)
	})
}

func TestNotify(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	loopback, err := yookassa.NewIPAllowList([]string{"127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	credited := make(chan string, 4)
	hook := httptest.NewServer(webhook(t, emu, loopback, credited))
	t.Cleanup(hook.Close)
	ctx := context.Background()

	p := newPayment(t, emu, "o1")
	// A forged "succeeded" for a pending payment is answered 200 but not
	// credited: the fetched payment is still pending.
	if err := emu.Notify(ctx, hook.URL, yookassa.EventPaymentSucceeded, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := emu.Succeed(p.ID); err != nil {
		t.Fatal(err)
	}
	if err := emu.Notify(ctx, hook.URL, yookassa.EventPaymentSucceeded, p.ID); err != nil {
		t.Fatal(err)
	}
	if len(credited) != 1 || <-credited != p.ID {
		t.Fatal("the real notification was not credited exactly once")
	}
	// A notification about a payment YooKassa never made is not delivered.
	if err := emu.Notify(ctx, hook.URL, yookassa.EventPaymentSucceeded, "made-up"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("made-up payment: err = %v, want the webhook's 503", err)
	}

	// The same sender outside the allow-list is refused.
	strict := httptest.NewServer(webhook(t, emu, yookassa.DefaultIPAllowList(), credited))
	t.Cleanup(strict.Close)
	if err := emu.Notify(ctx, strict.URL, yookassa.EventPaymentSucceeded, p.ID); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("loopback sender vs default allow-list: err = %v, want 403", err)
	}
	if len(credited) != 0 {
		t.Fatal("a refused notification was credited")
	}
}

func TestNotificationBodyIsWhatNotifySends(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	p := newPayment(t, emu, "o1")
	if err := emu.Succeed(p.ID); err != nil {
		t.Fatal(err)
	}
	var got []byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		}
	}))
	t.Cleanup(hook.Close)
	if err := emu.Notify(context.Background(), hook.URL, yookassa.EventPaymentSucceeded, p.ID); err != nil {
		t.Fatal(err)
	}
	if want := emu.NotificationBody(yookassa.EventPaymentSucceeded, p.ID); string(got) != string(want) {
		t.Fatalf("Notify sent\n%s\nNotificationBody gives\n%s", got, want)
	}
	var wire map[string]json.RawMessage
	if err := json.Unmarshal(got, &wire); err != nil {
		t.Fatal(err)
	}
	if string(wire["type"]) != `"notification"` || string(wire["event"]) != `"payment.succeeded"` {
		t.Fatalf("envelope = %s", got)
	}
}

func TestCheckoutPage(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	notified := make(chan string, 2)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, err := yookassa.ParseNotification(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		notified <- n.Event + " " + n.ObjectID()
	}))
	t.Cleanup(hook.Close)
	emu.SetNotificationURL(hook.URL)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := []struct {
		action     string
		wantStatus string
		wantEvent  string
	}{
		{"pay", yookassa.StatusSucceeded, yookassa.EventPaymentSucceeded},
		{"cancel", yookassa.StatusCanceled, yookassa.EventPaymentCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			p := newPayment(t, emu, tt.action)
			resp, err := http.Get(p.Confirmation.ConfirmationURL)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(page), `id="pay"`) || !strings.Contains(string(page), "199.00 RUB") {
				t.Fatalf("checkout page: %d %s", resp.StatusCode, page)
			}
			resp, err = noRedirect.Post(p.Confirmation.ConfirmationURL+"/"+tt.action, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://t.me/wgbot?start=paid" {
				t.Fatalf("after %s: %d to %q, want 303 to the return URL", tt.action, resp.StatusCode, resp.Header.Get("Location"))
			}
			if got, _ := emu.Payment(p.ID); got.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s", got.Status, tt.wantStatus)
			}
			if got := <-notified; got != tt.wantEvent+" "+p.ID {
				t.Fatalf("notified %q", got)
			}
			// A second click finds nothing left to do.
			resp, err = noRedirect.Post(p.Confirmation.ConfirmationURL+"/"+tt.action, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusConflict {
				t.Fatalf("second click: %d, want 409", resp.StatusCode)
			}
			// The stale link still leads back to the bot.
			resp, err = http.Get(p.Confirmation.ConfirmationURL)
			if err != nil {
				t.Fatal(err)
			}
			page, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(page), `id="pay"`) || !strings.Contains(string(page), `<a id="back" href="https://t.me/wgbot?start=paid">`) {
				t.Fatalf("checkout page after %s:\n%s", tt.action, page)
			}
		})
	}
}

func TestFaultsApplyInOrderAndExpire(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	p := newPayment(t, emu, "o1")
	emu.FailNext(1, http.StatusInternalServerError)
	if _, err := c.GetPayment(context.Background(), p.ID); !errors.Is(err, yookassa.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if _, err := c.GetPayment(context.Background(), p.ID); err != nil {
		t.Fatalf("fault outlived its count: %v", err)
	}
}

// A refunded payment keeps status "succeeded" and shows refunded_amount as
// {value, currency}; the refund object names its payment, status and
// amount: the wire format wgbot's refund handling reads.
func TestRefundWireFormat(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	p := newPayment(t, emu, "o1")
	if err := emu.Succeed(p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Refund(p.ID, yookassa.Amount{Value: "50.00", Currency: "RUB"}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, emu.URL+"/v3/payments/"+p.ID, nil)
	req.SetBasicAuth(emu.ShopID, emu.SecretKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var payment struct {
		Status         string          `json:"status"`
		RefundedAmount json.RawMessage `json:"refunded_amount"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&payment); err != nil {
		t.Fatal(err)
	}
	if payment.Status != "succeeded" || string(payment.RefundedAmount) != `{"value":"50.00","currency":"RUB"}` {
		t.Fatalf("fetched payment: status %q, refunded_amount %s", payment.Status, payment.RefundedAmount)
	}
	var n struct {
		Event  string `json:"event"`
		Object struct {
			PaymentID string          `json:"payment_id"`
			Status    string          `json:"status"`
			Amount    json.RawMessage `json:"amount"`
		} `json:"object"`
	}
	if err := json.Unmarshal(emu.NotificationBody(yookassa.EventRefundSucceeded, p.ID), &n); err != nil {
		t.Fatal(err)
	}
	if n.Event != "refund.succeeded" || n.Object.PaymentID != p.ID || n.Object.Status != "succeeded" ||
		string(n.Object.Amount) != `{"value":"50.00","currency":"RUB"}` {
		t.Fatalf("refund notification object = %+v (amount %s)", n.Object, n.Object.Amount)
	}
}
