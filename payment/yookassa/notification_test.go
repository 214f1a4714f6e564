package yookassa_test

import (
	"errors"
	"strings"
	"testing"

	"wgbot/payment/yookassa"
	"wgbot/payment/yookassa/yookassatest"
)

func TestParseNotification(t *testing.T) {
	t.Parallel()
	emu := yookassatest.NewServer("shop", "secret")
	t.Cleanup(emu.Close)
	p := createPayment(t, emu.Client(), "order-1")
	if err := emu.Succeed(p.ID); err != nil {
		t.Fatal(err)
	}
	refund, err := emu.Refund(p.ID, yookassa.Amount{Value: "50.00", Currency: "RUB"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("payment.succeeded", func(t *testing.T) {
		t.Parallel()
		n, err := yookassa.ParseNotification(emu.NotificationBody(yookassa.EventPaymentSucceeded, p.ID))
		if err != nil {
			t.Fatal(err)
		}
		if n.Event != yookassa.EventPaymentSucceeded || n.Payment == nil || n.Refund != nil {
			t.Fatalf("got %+v", n)
		}
		if n.ObjectID() != p.ID || n.Payment.Status != yookassa.StatusSucceeded || !n.Payment.Paid {
			t.Fatalf("payment = %+v", n.Payment)
		}
		if n.Payment.Amount != p.Amount || n.Payment.Metadata["order_id"] != "order-1" {
			t.Fatalf("amount/metadata not carried: %+v", n.Payment)
		}
	})
	t.Run("refund.succeeded", func(t *testing.T) {
		t.Parallel()
		n, err := yookassa.ParseNotification(emu.NotificationBody(yookassa.EventRefundSucceeded, refund.ID))
		if err != nil {
			t.Fatal(err)
		}
		if n.Refund == nil || n.ObjectID() != refund.ID || n.Refund.PaymentID != p.ID || n.Refund.Amount.Value != "50.00" {
			t.Fatalf("got %+v", n.Refund)
		}
	})
	for _, event := range []string{yookassa.EventPaymentCanceled, yookassa.EventPaymentWaitingForCapture} {
		t.Run(event, func(t *testing.T) {
			t.Parallel()
			n, err := yookassa.ParseNotification(emu.NotificationBody(event, p.ID))
			if err != nil {
				t.Fatal(err)
			}
			if n.Event != event || n.Payment.Status != strings.TrimPrefix(event, "payment.") {
				t.Fatalf("got %+v", n.Payment)
			}
		})
	}
	t.Run("unknown event is ErrUnsupportedEvent", func(t *testing.T) {
		t.Parallel()
		_, err := yookassa.ParseNotification(emu.NotificationBody("payout.succeeded", "po-1"))
		if !errors.Is(err, yookassa.ErrUnsupportedEvent) {
			t.Fatalf("err = %v, want ErrUnsupportedEvent", err)
		}
	})
}

func TestParseNotificationRejectsMalformed(t *testing.T) {
	t.Parallel()
	const object = `{"id":"p1","status":"succeeded","paid":true,"amount":{"value":"100.00","currency":"RUB"},"created_at":"2026-01-02T03:04:05.123Z"}`
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"empty body", ``, "malformed JSON"},
		{"not JSON", `type=notification`, "malformed JSON"},
		{"truncated", `{"type":"notification","event":"payment.succeeded","object":{"id":"p1"`, "malformed JSON"},
		{"array", `[` + object + `]`, "malformed JSON"},
		{"two objects glued", `{"type":"notification","event":"payment.succeeded","object":` + object + `}{}`, "data after"},
		{"null", `null`, "type is"},
		{"wrong type", `{"type":"payment","event":"payment.succeeded","object":` + object + `}`, `type is "payment"`},
		{"no event", `{"type":"notification","object":` + object + `}`, "no event"},
		{"no object", `{"type":"notification","event":"payment.succeeded"}`, "no object"},
		{"null object", `{"type":"notification","event":"payment.succeeded","object":null}`, "no object"},
		{"object is a string", `{"type":"notification","event":"payment.succeeded","object":"p1"}`, "payment object"},
		{"no id", `{"type":"notification","event":"payment.succeeded","object":{"status":"succeeded","amount":{"value":"1.00","currency":"RUB"}}}`, "no id"},
		{"status contradicts event", `{"type":"notification","event":"payment.succeeded","object":{"id":"p1","status":"pending","amount":{"value":"1.00","currency":"RUB"}}}`, `status "pending"`},
		{"float amount", `{"type":"notification","event":"payment.succeeded","object":{"id":"p1","status":"succeeded","amount":{"value":100.5,"currency":"RUB"}}}`, "payment object"},
		{"amount with too many decimals", `{"type":"notification","event":"payment.succeeded","object":{"id":"p1","status":"succeeded","amount":{"value":"1.005","currency":"RUB"}}}`, "decimal places"},
		{"no amount", `{"type":"notification","event":"payment.succeeded","object":{"id":"p1","status":"succeeded"}}`, "plain decimal"},
		{"bad time", `{"type":"notification","event":"payment.succeeded","object":{"id":"p1","status":"succeeded","amount":{"value":"1.00","currency":"RUB"},"created_at":"yesterday"}}`, "payment object"},
		{"refund without payment id", `{"type":"notification","event":"refund.succeeded","object":{"id":"r1","status":"succeeded","amount":{"value":"1.00","currency":"RUB"}}}`, "no payment_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := yookassa.ParseNotification([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseNotification accepted %s as %+v", tt.body, n)
			}
			if errors.Is(err, yookassa.ErrUnsupportedEvent) {
				t.Fatalf("malformed body classified as unsupported event: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(`{"type":"notification","event":"payment.succeeded","object":{"id":"p1","status":"succeeded","amount":{"value":"1.00","currency":"RUB"}}}`))
	f.Add([]byte(`{"type":"notification","event":"refund.succeeded","object":{"id":"r1","payment_id":"p1","status":"succeeded","amount":{"value":"1.00","currency":"RUB"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := yookassa.ParseNotification(body)
		if err != nil {
			return
		}
		// Whatever passes must carry an id and a valid positive amount.
		if n.ObjectID() == "" {
			t.Fatalf("accepted a notification without an object id: %q", body)
		}
		amount := yookassa.Amount{}
		if n.Payment != nil {
			amount = n.Payment.Amount
		} else {
			amount = n.Refund.Amount
		}
		if m, err := amount.Minor(); err != nil || m <= 0 {
			t.Fatalf("accepted amount %q: %d, %v", amount.Value, m, err)
		}
	})
}
