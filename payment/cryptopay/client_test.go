package cryptopay_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"wgbot/payment/cryptopay"
	"wgbot/payment/cryptopay/cryptopaytest"
)

func createInvoice(t *testing.T, c *cryptopay.Client, payload string) cryptopay.Invoice {
	t.Helper()
	inv, err := c.CreateInvoice(context.Background(), cryptopay.CreateInvoiceRequest{
		CurrencyType: cryptopay.CurrencyCrypto, Asset: "USDT", Amount: "2.5", Payload: payload,
		Description: "wgbot: 30 days", ExpiresIn: time.Hour,
	})
	if err != nil {
		t.Fatalf("CreateInvoice: %v", err)
	}
	return inv
}

func newEmulator(t *testing.T) *cryptopaytest.Server {
	t.Helper()
	emu := cryptopaytest.NewServer("4242:AAtest-token")
	t.Cleanup(emu.Close)
	return emu
}

func TestCreateAndGetInvoices(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	ctx := context.Background()

	app, err := c.GetMe(ctx)
	if err != nil || app.AppID == 0 {
		t.Fatalf("GetMe = %+v, %v", app, err)
	}

	crypto := createInvoice(t, c, "order:1")
	if crypto.InvoiceID == 0 || crypto.Status != cryptopay.StatusActive || crypto.Asset != "USDT" || crypto.Amount != "2.5" ||
		crypto.Payload != "order:1" || crypto.BotInvoiceURL == "" || crypto.ExpirationDate == nil {
		t.Fatalf("crypto invoice = %+v", crypto)
	}
	if got := crypto.ExpirationDate.Sub(crypto.CreatedAt); got != time.Hour {
		t.Fatalf("expires %s after creation, want 1h", got)
	}
	fiat, err := c.CreateInvoice(ctx, cryptopay.CreateInvoiceRequest{
		CurrencyType: cryptopay.CurrencyFiat, Fiat: "RUB", Amount: "199", Payload: "order:2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if fiat.Fiat != "RUB" || fiat.Asset != "" || fiat.CurrencyType != cryptopay.CurrencyFiat {
		t.Fatalf("fiat invoice = %+v", fiat)
	}

	if err := emu.Pay(crypto.InvoiceID); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetInvoices(ctx, crypto.InvoiceID, fiat.InvoiceID, 999999)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]cryptopay.Invoice{}
	for _, inv := range got {
		byID[inv.InvoiceID] = inv
	}
	if len(got) != 2 || byID[crypto.InvoiceID].Status != cryptopay.StatusPaid || byID[fiat.InvoiceID].Status != cryptopay.StatusActive {
		t.Fatalf("GetInvoices = %+v", got)
	}
	if p := byID[crypto.InvoiceID]; p.PaidAt == nil || p.PaidAmount != "2.5" || p.PaidAsset != "USDT" {
		t.Fatalf("paid invoice = %+v", p)
	}

	all, err := c.GetInvoices(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("GetInvoices() = %d invoices, %v; want 2", len(all), err)
	}
}

func TestGetInvoicesAsksForEveryID(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	var ids []int64
	for range 120 { // more than the API's default page of 100
		ids = append(ids, createInvoice(t, c, "x").InvoiceID)
	}
	got, err := c.GetInvoices(context.Background(), ids...)
	if err != nil || len(got) != len(ids) {
		t.Fatalf("GetInvoices(%d ids) = %d invoices, %v", len(ids), len(got), err)
	}
	if _, err := c.GetInvoices(context.Background(), make([]int64, 1001)...); !errors.Is(err, cryptopay.ErrInvalid) {
		t.Fatalf("1001 ids: err = %v, want ErrInvalid", err)
	}
}

func TestInvoiceExpires(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	inv, err := c.CreateInvoice(context.Background(), cryptopay.CreateInvoiceRequest{Asset: "TON", Amount: "1", ExpiresIn: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	other := createInvoice(t, c, "y")
	if err := emu.Expire(other.InvoiceID); err != nil {
		t.Fatal(err)
	}
	if err := emu.Pay(other.InvoiceID); err == nil {
		t.Fatal("an expired invoice was paid")
	}
	time.Sleep(1100 * time.Millisecond) // the one wall-clock wait: real expiry is by time
	got, err := c.GetInvoices(context.Background(), inv.InvoiceID)
	if err != nil || len(got) != 1 || got[0].Status != cryptopay.StatusExpired {
		t.Fatalf("after expiry: %+v, %v", got, err)
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	create := func(c *cryptopay.Client, req cryptopay.CreateInvoiceRequest) error {
		_, err := c.CreateInvoice(context.Background(), req)
		return err
	}
	ok := cryptopay.CreateInvoiceRequest{Asset: "USDT", Amount: "1"}
	tests := []struct {
		name     string
		setup    func(*cryptopaytest.Server)
		token    string
		call     func(*cryptopay.Client) error
		wantKind error
		wantName string // APIError.Name, when Crypto Pay answered
	}{
		{name: "wrong token is 401 UNAUTHORIZED", token: "4242:wrong",
			call: func(c *cryptopay.Client) error { return create(c, ok) }, wantKind: cryptopay.ErrInvalid, wantName: "UNAUTHORIZED"},
		{name: "wrong token on getInvoices", token: "4242:wrong",
			call:     func(c *cryptopay.Client) error { _, err := c.GetInvoices(context.Background(), 1); return err },
			wantKind: cryptopay.ErrInvalid, wantName: "UNAUTHORIZED"},
		{name: "500 is unavailable", setup: func(e *cryptopaytest.Server) { e.FailNext(1, http.StatusInternalServerError) },
			call: func(c *cryptopay.Client) error { return create(c, ok) }, wantKind: cryptopay.ErrUnavailable, wantName: "INTERNAL_SERVER_ERROR"},
		{name: "502 is unavailable", setup: func(e *cryptopaytest.Server) { e.FailNext(1, http.StatusBadGateway) },
			call: func(c *cryptopay.Client) error { _, err := c.GetMe(context.Background()); return err }, wantKind: cryptopay.ErrUnavailable},
		{name: "429 is unavailable", setup: func(e *cryptopaytest.Server) { e.FailNext(1, http.StatusTooManyRequests) },
			call: func(c *cryptopay.Client) error { return create(c, ok) }, wantKind: cryptopay.ErrUnavailable},
		{name: "dropped connection is unavailable", setup: func(e *cryptopaytest.Server) { e.DropNext(1) },
			call: func(c *cryptopay.Client) error { return create(c, ok) }, wantKind: cryptopay.ErrUnavailable},
		{name: "server gone is unavailable", setup: func(e *cryptopaytest.Server) { e.Close() },
			call: func(c *cryptopay.Client) error { return create(c, ok) }, wantKind: cryptopay.ErrUnavailable},
		{name: "unsupported asset is refused by the API",
			call: func(c *cryptopay.Client) error {
				return create(c, cryptopay.CreateInvoiceRequest{Asset: "DOGE", Amount: "1"})
			},
			wantKind: cryptopay.ErrInvalid, wantName: "ASSET_INVALID"},
		{name: "unsupported fiat is refused by the API",
			call: func(c *cryptopay.Client) error {
				return create(c, cryptopay.CreateInvoiceRequest{CurrencyType: "fiat", Fiat: "XYZ", Amount: "1"})
			},
			wantKind: cryptopay.ErrInvalid, wantName: "FIAT_INVALID"},
		{name: "client refuses a fiat invoice with an asset",
			call: func(c *cryptopay.Client) error {
				return create(c, cryptopay.CreateInvoiceRequest{CurrencyType: "fiat", Fiat: "RUB", Asset: "USDT", Amount: "1"})
			},
			wantKind: cryptopay.ErrInvalid},
		{name: "client refuses a zero amount",
			call: func(c *cryptopay.Client) error {
				return create(c, cryptopay.CreateInvoiceRequest{Asset: "USDT", Amount: "0.00"})
			},
			wantKind: cryptopay.ErrInvalid},
		{name: "client refuses a sub-second expiry",
			call: func(c *cryptopay.Client) error {
				return create(c, cryptopay.CreateInvoiceRequest{Asset: "USDT", Amount: "1", ExpiresIn: 1500 * time.Millisecond})
			},
			wantKind: cryptopay.ErrInvalid},
		{name: "client refuses an oversized payload",
			call: func(c *cryptopay.Client) error {
				return create(c, cryptopay.CreateInvoiceRequest{Asset: "USDT", Amount: "1", Payload: strings.Repeat("p", 4097)})
			},
			wantKind: cryptopay.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := newEmulator(t)
			c := emu.Client()
			if tt.token != "" {
				c.Token = tt.token
			}
			if tt.setup != nil {
				tt.setup(emu)
			}
			err := tt.call(c)
			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			other := cryptopay.ErrInvalid
			if tt.wantKind == cryptopay.ErrInvalid {
				other = cryptopay.ErrUnavailable
			}
			if errors.Is(err, other) {
				t.Fatalf("err = %v matches both kinds", err)
			}
			var apiErr *cryptopay.APIError
			if tt.wantName != "" && (!errors.As(err, &apiErr) || apiErr.Name != tt.wantName) {
				t.Fatalf("err = %v, want an APIError named %s", err, tt.wantName)
			}
			if strings.Contains(err.Error(), "AAtest-token") || strings.Contains(err.Error(), "4242:wrong") {
				t.Fatalf("error text leaks the token: %v", err)
			}
		})
	}
}

func TestLostAnswerMakesASecondInvoice(t *testing.T) {
	t.Parallel()
	// Crypto Pay has no idempotence keys: this pins the behaviour the
	// caller has to live with (expiring invoices, order id in the payload).
	emu := newEmulator(t)
	c := emu.Client()
	emu.DropNextAnswers(1)
	if _, err := c.CreateInvoice(context.Background(), cryptopay.CreateInvoiceRequest{Asset: "USDT", Amount: "1"}); !errors.Is(err, cryptopay.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	createInvoice(t, c, "retry")
	if n := len(emu.Invoices()); n != 2 {
		t.Fatalf("%d invoices, want 2", n)
	}
}

func TestClientStringHidesToken(t *testing.T) {
	t.Parallel()
	c := &cryptopay.Client{Token: "4242:AAsupersecret"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "supersecret") {
			t.Fatalf("printed client = %s", s)
		}
	}
}

func TestActiveInvoiceFindsByPayload(t *testing.T) {
	t.Parallel()
	emu := newEmulator(t)
	c := emu.Client()
	ctx := context.Background()
	want := createInvoice(t, c, "order-7")
	createInvoice(t, c, "order-8")
	paid := createInvoice(t, c, "order-9")
	if err := emu.Pay(paid.InvoiceID); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.ActiveInvoice(ctx, "order-7")
	if err != nil || !ok || got.InvoiceID != want.InvoiceID || got.BotInvoiceURL != want.BotInvoiceURL {
		t.Fatalf("ActiveInvoice(order-7) = %+v, %v, %v; want invoice %d", got, ok, err, want.InvoiceID)
	}
	for _, payload := range []string{"order-9", "order-1", ""} { // paid, unknown, empty
		if got, ok, err := c.ActiveInvoice(ctx, payload); ok || err != nil {
			t.Errorf("ActiveInvoice(%q) = %+v, %v, %v; want none", payload, got, ok, err)
		}
	}
}
