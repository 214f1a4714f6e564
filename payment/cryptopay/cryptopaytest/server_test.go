package cryptopaytest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"wgbot/payment/cryptopay"
	"wgbot/payment/cryptopay/cryptopaytest"
)

const token = "4242:AAemulator"

func newEmulator(t *testing.T) *cryptopaytest.Server {
	t.Helper()
	emu := cryptopaytest.NewServer(token)
	t.Cleanup(emu.Close)
	return emu
}

func newInvoice(t *testing.T, emu *cryptopaytest.Server) cryptopay.Invoice {
	t.Helper()
	inv, err := emu.Client().CreateInvoice(context.Background(), cryptopay.CreateInvoiceRequest{
		CurrencyType: cryptopay.CurrencyFiat, Fiat: "USD", Amount: "3.00", Payload: "order:7", Description: "30 days",
	})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// raw calls the API the ways other clients do and decodes the envelope.
func raw(t *testing.T, req *http.Request) (int, map[string]json.RawMessage) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("answer is not a Crypto Pay envelope: %v", err)
	}
	return resp.StatusCode, env
}

func TestParameterEncodings(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	form := url.Values{"asset": {"TON"}, "amount": {"1.25"}, "expires_in": {"60"}}
	tests := []struct {
		name string
		req  func() *http.Request
	}{
		{"query string", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, emu.BaseURL()+"/createInvoice?"+form.Encode(), nil)
			return r
		}},
		{"form body", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, emu.BaseURL()+"/createInvoice", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}},
		{"JSON with a number", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, emu.BaseURL()+"/createInvoice",
				strings.NewReader(`{"asset":"TON","amount":"1.25","expires_in":60}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := tt.req()
			req.Header.Set("Crypto-Pay-API-Token", token)
			status, env := raw(t, req)
			var inv cryptopay.Invoice
			if status != 200 || string(env["ok"]) != "true" || json.Unmarshal(env["result"], &inv) != nil {
				t.Fatalf("%d %v", status, env)
			}
			if inv.Asset != "TON" || inv.Amount != "1.25" || inv.ExpirationDate == nil {
				t.Fatalf("invoice = %+v", inv)
			}
		})
	}
}

func TestAPIRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		body       string
		token      string
		wantStatus int
		wantName   string
	}{
		{"no token", "getMe", `{}`, "", 401, "UNAUTHORIZED"},
		{"wrong token", "getMe", `{}`, "4242:other", 401, "UNAUTHORIZED"},
		{"unknown method", "sendCoins", `{}`, token, 405, "METHOD_NOT_FOUND"},
		{"unknown parameter", "createInvoice", `{"asset":"TON","amount":"1","paylod":"typo"}`, token, 400, "PARAM_PAYLOD_UNKNOWN"},
		{"float amount is fine as text", "createInvoice", `{"asset":"TON","amount":1.5}`, token, 200, ""},
		{"negative amount", "createInvoice", `{"asset":"TON","amount":"-1"}`, token, 400, "AMOUNT_INVALID"},
		{"zero amount", "createInvoice", `{"asset":"TON","amount":"0"}`, token, 400, "AMOUNT_INVALID"},
		{"no asset", "createInvoice", `{"amount":"1"}`, token, 400, "ASSET_INVALID"},
		{"bad currency type", "createInvoice", `{"currency_type":"gold","amount":"1"}`, token, 400, "CURRENCY_TYPE_INVALID"},
		{"expiry too long", "createInvoice", `{"asset":"TON","amount":"1","expires_in":2678401}`, token, 400, "EXPIRES_IN_INVALID"},
		{"bad ids", "getInvoices", `{"invoice_ids":"1,x"}`, token, 400, "INVOICE_IDS_INVALID"},
		{"count too big", "getInvoices", `{"count":1001}`, token, 400, "COUNT_INVALID"},
		{"object parameter", "createInvoice", `{"asset":{"code":"TON"},"amount":"1"}`, token, 400, "ASSET_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := newEmulator(t)
			req, _ := http.NewRequest(http.MethodPost, emu.BaseURL()+"/"+tt.method, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.token != "" {
				req.Header.Set("Crypto-Pay-API-Token", tt.token)
			}
			status, env := raw(t, req)
			var e struct {
				Code int
				Name string
			}
			_ = json.Unmarshal(env["error"], &e)
			if status != tt.wantStatus || e.Name != tt.wantName {
				t.Fatalf("got %d %s, want %d %s", status, env["error"], tt.wantStatus, tt.wantName)
			}
			if status != 200 && (string(env["ok"]) != "false" || e.Code != status) {
				t.Fatalf("error envelope = %v", env)
			}
		})
	}
}

// webhook is the receiving side as wgbot is meant to build it: verify the
// signature on the raw bytes first, then parse.
func webhook(paid chan<- cryptopay.Update) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !cryptopay.VerifySignature(token, body, r.Header.Get("crypto-pay-api-signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		u, err := cryptopay.ParseUpdate(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		paid <- u
	})
}

func TestNotify(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	paid := make(chan cryptopay.Update, 2)
	hook := httptest.NewServer(webhook(paid))
	t.Cleanup(hook.Close)
	ctx := context.Background()
	inv := newInvoice(t, emu)

	if err := emu.Notify(ctx, hook.URL, inv.InvoiceID); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("update for an unpaid invoice: err = %v, want the webhook's 400", err)
	}
	if err := emu.Pay(inv.InvoiceID); err != nil {
		t.Fatal(err)
	}
	if err := emu.Notify(ctx, hook.URL, inv.InvoiceID); err != nil {
		t.Fatal(err)
	}
	u := <-paid
	if u.Invoice.InvoiceID != inv.InvoiceID || u.Invoice.Payload != "order:7" || u.Invoice.PaidAsset != "USDT" || u.Invoice.PaidAmount != "3.00" {
		t.Fatalf("update = %+v", u)
	}
	if err := emu.Notify(ctx, hook.URL, 424242); err == nil {
		t.Fatal("Notify for an unknown invoice succeeded")
	}

	// An update signed with another app's token is refused.
	other := cryptopaytest.NewServer("9999:AAother")
	t.Cleanup(other.Close)
	foreign, err := other.Client().CreateInvoice(ctx, cryptopay.CreateInvoiceRequest{Asset: "USDT", Amount: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Pay(foreign.InvoiceID); err != nil {
		t.Fatal(err)
	}
	if err := other.Notify(ctx, hook.URL, foreign.InvoiceID); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("foreign update: err = %v, want 401", err)
	}
}

func TestSignedBody(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	inv := newInvoice(t, emu)
	if err := emu.Pay(inv.InvoiceID); err != nil {
		t.Fatal(err)
	}
	body, sig := emu.SignedBody(inv.InvoiceID)
	body2, _ := emu.SignedBody(inv.InvoiceID)
	u1, err1 := cryptopay.ParseUpdate(body)
	u2, err2 := cryptopay.ParseUpdate(body2)
	if err1 != nil || err2 != nil || u2.UpdateID <= u1.UpdateID {
		t.Fatalf("update ids %d then %d (%v, %v); want increasing", u1.UpdateID, u2.UpdateID, err1, err2)
	}
	if !cryptopay.VerifySignature(token, body, sig) {
		t.Fatal("signature does not verify")
	}
	tampered := []byte(strings.Replace(string(body), `"amount":"3.00"`, `"amount":"30.0"`, 1))
	if string(tampered) == string(body) {
		t.Fatal("test did not tamper with the body")
	}
	if cryptopay.VerifySignature(token, tampered, sig) {
		t.Fatal("tampered body verifies")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("SignedBody of an unknown invoice did not panic")
			}
		}()
		emu.SignedBody(1)
	}()
}

func TestInvoicePage(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	paid := make(chan cryptopay.Update, 1)
	hook := httptest.NewServer(webhook(paid))
	t.Cleanup(hook.Close)
	emu.SetWebhookURL(hook.URL)

	inv := newInvoice(t, emu)
	resp, err := http.Get(inv.BotInvoiceURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `id="pay"`) || !strings.Contains(string(page), "3.00 USD") {
		t.Fatalf("invoice page: %d %s", resp.StatusCode, page)
	}
	resp, err = http.Post(inv.BotInvoiceURL+"/pay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("pay: %d", resp.StatusCode)
	}
	if u := <-paid; u.Invoice.InvoiceID != inv.InvoiceID {
		t.Fatalf("webhook got invoice %d", u.Invoice.InvoiceID)
	}
	resp, err = http.Post(inv.BotInvoiceURL+"/pay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second payment: %d, want 409", resp.StatusCode)
	}

	expiring := newInvoice(t, emu)
	resp, err = http.Post(expiring.BotInvoiceURL+"/expire", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := emu.Invoice(expiring.InvoiceID); resp.StatusCode != 200 || got.Status != cryptopay.StatusExpired {
		t.Fatalf("expire: %d, status %s", resp.StatusCode, got.Status)
	}
}

func TestRequestsLogged(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	inv := newInvoice(t, emu)
	if _, err := emu.Client().GetInvoices(context.Background(), inv.InvoiceID); err != nil {
		t.Fatal(err)
	}
	got := emu.Requests()
	if len(got) != 2 || got[0].Method != "createInvoice" || got[1].Method != "getInvoices" {
		t.Fatalf("requests = %+v", got)
	}
}
