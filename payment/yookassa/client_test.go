package yookassa_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"wgbot/payment/yookassa"
	"wgbot/payment/yookassa/yookassatest"
)

// createPayment makes a 100.00 RUB payment for order, keyed by the order.
func createPayment(t *testing.T, c *yookassa.Client, order string) yookassa.Payment {
	t.Helper()
	p, err := c.CreatePayment(context.Background(), paymentRequest(order), "key-"+order)
	if err != nil {
		t.Fatalf("CreatePayment(%s): %v", order, err)
	}
	return p
}

func paymentRequest(order string) yookassa.CreatePaymentRequest {
	return yookassa.CreatePaymentRequest{
		Amount:      yookassa.Amount{Value: "100.00", Currency: "RUB"},
		Description: "wgbot: 30 days",
		ReturnURL:   "https://t.me/wgbot",
		Metadata:    map[string]string{"order_id": order},
	}
}

func newEmulator(t *testing.T) *yookassatest.Server {
	t.Helper()
	emu := yookassatest.NewServer("123456", "test_secret")
	t.Cleanup(emu.Close)
	return emu
}

func TestCreateAndGetPayment(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	ctx := context.Background()

	p := createPayment(t, c, "o1")
	if p.ID == "" || p.Status != yookassa.StatusPending || p.Paid {
		t.Fatalf("new payment = %+v", p)
	}
	if p.Amount != (yookassa.Amount{Value: "100.00", Currency: "RUB"}) {
		t.Fatalf("amount = %+v, want exactly 100.00 RUB", p.Amount)
	}
	if p.Confirmation == nil || p.Confirmation.Type != "redirect" || !strings.HasPrefix(p.Confirmation.ConfirmationURL, emu.URL+"/checkout/") {
		t.Fatalf("confirmation = %+v", p.Confirmation)
	}
	if p.Metadata["order_id"] != "o1" || p.Description != "wgbot: 30 days" || p.CreatedAt.IsZero() {
		t.Fatalf("payment lost request data: %+v", p)
	}

	got, err := c.GetPayment(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != yookassa.StatusPending {
		t.Fatalf("status = %s, want pending", got.Status)
	}

	if err := emu.Succeed(p.ID); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetPayment(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != yookassa.StatusSucceeded || !got.Paid || got.CapturedAt == nil || got.Metadata["order_id"] != "o1" {
		t.Fatalf("after Succeed: %+v", got)
	}

	// The client sent what the real API expects; the emulator refuses
	// unknown fields, so this also pins the wire format.
	reqs := emu.Requests()
	if len(reqs) != 3 || reqs[0] != (yookassatest.Request{Method: "POST", Path: "/v3/payments", IdempotenceKey: "key-o1"}) {
		t.Fatalf("requests = %+v", reqs)
	}
}

func TestIdempotenceKey(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	ctx := context.Background()

	first := createPayment(t, c, "o1")
	again, err := c.CreatePayment(ctx, paymentRequest("o1"), "key-o1")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID {
		t.Fatalf("replay with the same key created payment %s, want %s", again.ID, first.ID)
	}
	if n := len(emu.Payments()); n != 1 {
		t.Fatalf("emulator holds %d payments, want 1", n)
	}

	other, err := c.CreatePayment(ctx, paymentRequest("o1"), "key-o1-second-try")
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == first.ID {
		t.Fatal("a new key returned the old payment")
	}

	changed := paymentRequest("o1")
	changed.Amount.Value = "1.00"
	_, err = c.CreatePayment(ctx, changed, "key-o1")
	var apiErr *yookassa.APIError
	if !errors.Is(err, yookassa.ErrInvalid) || !errors.As(err, &apiErr) || apiErr.Parameter != "Idempotence-Key" {
		t.Fatalf("same key, different body: err = %v, want ErrInvalid about Idempotence-Key", err)
	}
}

// TestLostAnswerRetry is the case idempotence keys exist for: YooKassa
// created the payment but the answer never arrived.
func TestLostAnswerRetry(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	emu.DropNextAnswers(1)
	_, err := c.CreatePayment(context.Background(), paymentRequest("o1"), "key-o1")
	if !errors.Is(err, yookassa.ErrUnavailable) {
		t.Fatalf("lost answer: err = %v, want ErrUnavailable", err)
	}
	p := createPayment(t, c, "o1")
	payments := emu.Payments()
	if len(payments) != 1 || payments[0].ID != p.ID {
		t.Fatalf("retry made %d payments (%+v), want the one created before", len(payments), payments)
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(*yookassatest.Server)
		client   func(*yookassatest.Server) *yookassa.Client
		call     func(*yookassa.Client) error
		wantKind error
		wantCode string // APIError.Code, when YooKassa answered
	}{
		{
			name:   "wrong secret key is 401 invalid_credentials",
			client: func(e *yookassatest.Server) *yookassa.Client { c := e.Client(); c.SecretKey = "wrong"; return c },
			call: func(c *yookassa.Client) error {
				_, err := c.CreatePayment(context.Background(), paymentRequest("o1"), "k1")
				return err
			},
			wantKind: yookassa.ErrInvalid, wantCode: "invalid_credentials",
		},
		{
			name:   "wrong shop id",
			client: func(e *yookassatest.Server) *yookassa.Client { c := e.Client(); c.ShopID = "999"; return c },
			call: func(c *yookassa.Client) error {
				_, err := c.GetPayment(context.Background(), "anything")
				return err
			},
			wantKind: yookassa.ErrInvalid, wantCode: "invalid_credentials",
		},
		{
			name:  "500 is unavailable",
			setup: func(e *yookassatest.Server) { e.FailNext(1, http.StatusInternalServerError) },
			call: func(c *yookassa.Client) error {
				_, err := c.CreatePayment(context.Background(), paymentRequest("o1"), "k1")
				return err
			},
			wantKind: yookassa.ErrUnavailable, wantCode: "internal_server_error",
		},
		{
			name:  "503 on get is unavailable",
			setup: func(e *yookassatest.Server) { e.FailNext(1, http.StatusServiceUnavailable) },
			call: func(c *yookassa.Client) error {
				_, err := c.GetPayment(context.Background(), "p1")
				return err
			},
			wantKind: yookassa.ErrUnavailable,
		},
		{
			name:  "429 is unavailable",
			setup: func(e *yookassatest.Server) { e.FailNext(1, http.StatusTooManyRequests) },
			call: func(c *yookassa.Client) error {
				_, err := c.GetPayment(context.Background(), "p1")
				return err
			},
			wantKind: yookassa.ErrUnavailable, wantCode: "too_many_requests",
		},
		{
			name:  "dropped connection is unavailable",
			setup: func(e *yookassatest.Server) { e.DropNext(1) },
			call: func(c *yookassa.Client) error {
				_, err := c.CreatePayment(context.Background(), paymentRequest("o1"), "k1")
				return err
			},
			wantKind: yookassa.ErrUnavailable,
		},
		{
			name:  "server gone is unavailable",
			setup: func(e *yookassatest.Server) { e.Close() },
			call: func(c *yookassa.Client) error {
				_, err := c.GetPayment(context.Background(), "p1")
				return err
			},
			wantKind: yookassa.ErrUnavailable,
		},
		{
			name: "unknown payment is not found",
			call: func(c *yookassa.Client) error {
				_, err := c.GetPayment(context.Background(), "no-such-payment")
				return err
			},
			wantKind: yookassa.ErrNotFound, wantCode: "not_found",
		},
		{
			name: "refund of a pending payment is refused",
			call: func(c *yookassa.Client) error {
				p, err := c.CreatePayment(context.Background(), paymentRequest("o1"), "k1")
				if err != nil {
					return err
				}
				_, err = c.CreateRefund(context.Background(), p.ID, p.Amount, "r1")
				return err
			},
			wantKind: yookassa.ErrInvalid, wantCode: "invalid_request",
		},
		{
			name: "client refuses an empty idempotence key before sending",
			call: func(c *yookassa.Client) error {
				_, err := c.CreatePayment(context.Background(), paymentRequest("o1"), "")
				return err
			},
			wantKind: yookassa.ErrInvalid,
		},
		{
			name: "client refuses a float-looking amount",
			call: func(c *yookassa.Client) error {
				req := paymentRequest("o1")
				req.Amount.Value = "1e2"
				_, err := c.CreatePayment(context.Background(), req, "k1")
				return err
			},
			wantKind: yookassa.ErrInvalid,
		},
		{
			name: "canceled context",
			call: func(c *yookassa.Client) error {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_, err := c.GetPayment(ctx, "p1")
				if !errors.Is(err, context.Canceled) {
					return errors.New("context.Canceled lost from the chain")
				}
				return err
			},
			wantKind: yookassa.ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := newEmulator(t)
			c := emu.Client()
			if tt.client != nil {
				c = tt.client(emu)
			}
			if tt.setup != nil {
				tt.setup(emu)
			}
			err := tt.call(c)
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			other := yookassa.ErrInvalid
			if tt.wantKind != yookassa.ErrUnavailable {
				other = yookassa.ErrUnavailable
			}
			if errors.Is(err, other) {
				t.Fatalf("err = %v matches both ErrInvalid and ErrUnavailable", err)
			}
			var apiErr *yookassa.APIError
			if tt.wantCode != "" && (!errors.As(err, &apiErr) || apiErr.Code != tt.wantCode) {
				t.Fatalf("err = %v, want an APIError with code %s", err, tt.wantCode)
			}
			if strings.Contains(err.Error(), "test_secret") {
				t.Fatalf("error text leaks the secret key: %v", err)
			}
		})
	}
}

func TestUnavailableThenRetrySucceeds(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	emu.FailNext(2, http.StatusBadGateway)
	for i := range 2 {
		if _, err := c.CreatePayment(context.Background(), paymentRequest("o1"), "key-o1"); !errors.Is(err, yookassa.ErrUnavailable) {
			t.Fatalf("attempt %d: err = %v, want ErrUnavailable", i+1, err)
		}
	}
	createPayment(t, c, "o1")
	if n := len(emu.Payments()); n != 1 {
		t.Fatalf("%d payments after retries, want 1", n)
	}
}

func TestCreateRefund(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	ctx := context.Background()
	p := createPayment(t, c, "o1")
	if err := emu.Succeed(p.ID); err != nil {
		t.Fatal(err)
	}
	half := yookassa.Amount{Value: "50.00", Currency: "RUB"}
	r, err := c.CreateRefund(ctx, p.ID, half, "refund-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == "" || r.PaymentID != p.ID || r.Status != yookassa.StatusSucceeded || r.Amount != half {
		t.Fatalf("refund = %+v", r)
	}
	again, err := c.CreateRefund(ctx, p.ID, half, "refund-1")
	if err != nil || again.ID != r.ID {
		t.Fatalf("replayed refund = %+v, %v; want refund %s again", again, err, r.ID)
	}
	got, err := c.GetPayment(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefundedAmount == nil || got.RefundedAmount.Value != "50.00" {
		t.Fatalf("refunded amount = %+v, want 50.00 once", got.RefundedAmount)
	}
	if _, err := c.CreateRefund(ctx, p.ID, yookassa.Amount{Value: "50.01", Currency: "RUB"}, "refund-2"); !errors.Is(err, yookassa.ErrInvalid) {
		t.Fatalf("over-refund: err = %v, want ErrInvalid", err)
	}
}

func TestClientStringHidesSecret(t *testing.T) {
	t.Parallel()
	c := &yookassa.Client{ShopID: "123", SecretKey: "live_supersecret"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "supersecret") || !strings.Contains(s, "123") {
			t.Fatalf("printed client = %s", s)
		}
	}
}
