package cryptopay_test

import (
	"errors"
	"strings"
	"testing"

	"wgbot/payment/cryptopay"
	"wgbot/payment/cryptopay/cryptopaytest"
)

// goldenToken, goldenBody and goldenSig were computed with openssl, not with
// this package:
//
//	key=$(printf %s "$TOKEN" | openssl dgst -sha256 -hex | awk '{print $2}')
//	printf %s "$BODY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$key
const (
	goldenToken = "12345:AAHnTestTokenForGoldenVector"
	goldenBody  = `{"update_id":7,"update_type":"invoice_paid","request_date":"2026-01-02T03:04:05.678Z","payload":{"invoice_id":528890,"hash":"IVabc","currency_type":"fiat","fiat":"RUB","amount":"199","status":"paid","paid_asset":"USDT","paid_amount":"2.19","paid_at":"2026-01-02T03:04:05.000Z","created_at":"2026-01-02T03:00:00.000Z","payload":"order:42"}}`
	goldenSig   = "3289ff1c06331bda1493c31c8bd97b48cc2bb6e3e8c20f0526efbcbc01c98acf"
)

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	altered := []byte(goldenBody)
	altered[strings.Index(goldenBody, "199")] = '9' // "999": a bigger invoice
	tests := []struct {
		name  string
		token string
		body  []byte
		sig   string
		want  bool
	}{
		{"valid", goldenToken, []byte(goldenBody), goldenSig, true},
		{"valid, upper-case hex", goldenToken, []byte(goldenBody), strings.ToUpper(goldenSig), true},
		{"one byte of the body altered", goldenToken, altered, goldenSig, false},
		{"body with a trailing newline", goldenToken, []byte(goldenBody + "\n"), goldenSig, false},
		{"wrong token", goldenToken + "x", []byte(goldenBody), goldenSig, false},
		{"empty token", "", []byte(goldenBody), goldenSig, false},
		{"signature one digit off", goldenToken, []byte(goldenBody), goldenSig[:63] + "0", false},
		{"bad hex", goldenToken, []byte(goldenBody), "zz" + goldenSig[2:], false},
		{"odd-length hex", goldenToken, []byte(goldenBody), goldenSig[1:], false},
		{"truncated signature", goldenToken, []byte(goldenBody), goldenSig[:32], false},
		{"signature with a prefix", goldenToken, []byte(goldenBody), "sha256=" + goldenSig, false},
		{"empty signature", goldenToken, []byte(goldenBody), "", false},
		{"hex of the key instead of the mac", goldenToken, []byte(goldenBody), "24e0eb0e96e58fd685b53f6b1ae5ca3d93e1bdb05e11547bf80dd0a5e34f42d8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := cryptopay.VerifySignature(tt.token, tt.body, tt.sig); got != tt.want {
				t.Fatalf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmulatorSignatureVerifies(t *testing.T) {
	t.Parallel()
	emu := cryptopaytest.NewServer("emu:token")
	t.Cleanup(emu.Close)
	inv := createInvoice(t, emu.Client(), "order:1")
	if err := emu.Pay(inv.InvoiceID); err != nil {
		t.Fatal(err)
	}
	body, sig := emu.SignedBody(inv.InvoiceID)
	if !cryptopay.VerifySignature("emu:token", body, sig) {
		t.Fatal("the emulator's signature does not verify")
	}
	if cryptopay.VerifySignature("other:token", body, sig) {
		t.Fatal("the signature verifies under another token")
	}
}

func TestParseUpdate(t *testing.T) {
	t.Parallel()
	u, err := cryptopay.ParseUpdate([]byte(goldenBody))
	if err != nil {
		t.Fatal(err)
	}
	inv := u.Invoice
	if u.UpdateID != 7 || u.UpdateType != cryptopay.UpdateInvoicePaid || u.RequestDate.IsZero() {
		t.Fatalf("update = %+v", u)
	}
	if inv.InvoiceID != 528890 || inv.Status != cryptopay.StatusPaid || inv.Amount != "199" || inv.Fiat != "RUB" ||
		inv.PaidAmount != "2.19" || inv.PaidAsset != "USDT" || inv.Payload != "order:42" || inv.PaidAt == nil {
		t.Fatalf("invoice = %+v", inv)
	}
}

func TestParseUpdateRejectsMalformed(t *testing.T) {
	t.Parallel()
	const paid = `{"invoice_id":1,"status":"paid","currency_type":"crypto","asset":"USDT","amount":"1.5"}`
	envelope := func(payload string) string {
		return `{"update_id":1,"update_type":"invoice_paid","request_date":"2026-01-02T03:04:05Z","payload":` + payload + `}`
	}
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"empty", ``, "malformed JSON"},
		{"not JSON", `update_id=1`, "malformed JSON"},
		{"truncated", envelope(paid)[:40], "malformed JSON"},
		{"two objects", envelope(paid) + `{}`, "data after"},
		{"array", `[` + envelope(paid) + `]`, "malformed JSON"},
		{"update_id as string", `{"update_id":"1","update_type":"invoice_paid","request_date":"2026-01-02T03:04:05Z","payload":` + paid + `}`, "malformed JSON"},
		{"no update_id", `{"update_type":"invoice_paid","request_date":"2026-01-02T03:04:05Z","payload":` + paid + `}`, "update_id 0"},
		{"no request_date", `{"update_id":1,"update_type":"invoice_paid","payload":` + paid + `}`, "no request_date"},
		{"no payload", `{"update_id":1,"update_type":"invoice_paid","request_date":"2026-01-02T03:04:05Z"}`, "no payload"},
		{"null payload", envelope(`null`), "no payload"},
		{"payload not an object", envelope(`"order:1"`), "invoice"},
		{"no invoice_id", envelope(`{"status":"paid","asset":"USDT","amount":"1"}`), "invoice_id 0"},
		{"invoice active", envelope(`{"invoice_id":1,"status":"active","asset":"USDT","amount":"1"}`), `status "active"`},
		{"invoice expired", envelope(`{"invoice_id":1,"status":"expired","asset":"USDT","amount":"1"}`), `status "expired"`},
		{"amount as float", envelope(`{"invoice_id":1,"status":"paid","asset":"USDT","amount":1.5}`), "invoice"},
		{"amount garbage", envelope(`{"invoice_id":1,"status":"paid","asset":"USDT","amount":"1,5"}`), "plain decimal"},
		{"amount zero", envelope(`{"invoice_id":1,"status":"paid","asset":"USDT","amount":"0.0"}`), "positive"},
		{"crypto without asset", envelope(`{"invoice_id":1,"status":"paid","currency_type":"crypto","amount":"1"}`), "without asset"},
		{"fiat without fiat", envelope(`{"invoice_id":1,"status":"paid","currency_type":"fiat","amount":"1"}`), "without fiat"},
		{"odd currency type", envelope(`{"invoice_id":1,"status":"paid","currency_type":"gold","asset":"USDT","amount":"1"}`), "currency_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := cryptopay.ParseUpdate([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseUpdate accepted %s as %+v", tt.body, u)
			}
			if errors.Is(err, cryptopay.ErrUnsupportedUpdate) {
				t.Fatalf("malformed body classified as unsupported: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
	t.Run("unknown update type", func(t *testing.T) {
		t.Parallel()
		_, err := cryptopay.ParseUpdate([]byte(`{"update_id":1,"update_type":"check_activated","request_date":"2026-01-02T03:04:05Z","payload":{}}`))
		if !errors.Is(err, cryptopay.ErrUnsupportedUpdate) {
			t.Fatalf("err = %v, want ErrUnsupportedUpdate", err)
		}
	})
	t.Run("invoice without currency_type is crypto", func(t *testing.T) {
		t.Parallel()
		if _, err := cryptopay.ParseUpdate([]byte(envelope(`{"invoice_id":1,"status":"paid","asset":"TON","amount":"3"}`))); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseUpdate(f *testing.F) {
	f.Add([]byte(goldenBody))
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := cryptopay.ParseUpdate(body)
		if err != nil {
			return
		}
		if u.Invoice.InvoiceID <= 0 || u.Invoice.Status != cryptopay.StatusPaid {
			t.Fatalf("accepted %q as %+v", body, u)
		}
		if strings.Trim(u.Invoice.Amount, "0123456789.") != "" || strings.Trim(u.Invoice.Amount, "0.") == "" {
			t.Fatalf("accepted amount %q", u.Invoice.Amount)
		}
	})
}
