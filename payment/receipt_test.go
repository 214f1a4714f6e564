package payment_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"wgbot"
	"wgbot/metrics"
	"wgbot/payment"
	"wgbot/payment/yookassa/yookassatest"
)

func newYooKassaReceipts(t *testing.T, e *env, rc payment.ReceiptConfig) (*payment.YooKassa, *yookassatest.Server) {
	emu := yookassatest.NewServer("shop-1", "test_secret")
	emu.RequireReceipts = true
	t.Cleanup(emu.Close)
	y, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: emu.URL, ShopID: "shop-1", SecretKey: "test_secret",
		ReturnURL: "https://t.me/wgbot_test_bot", Receipts: rc}, e.svc, metrics.New(nil), e.log)
	if err != nil {
		t.Fatal(err)
	}
	return y, emu
}

// TestYooKassaReceipt: with receipts on, a user with no contact is asked
// for one and no payment is made; once given, the payment carries the
// receipt a shop with a cash register must send (the emulator refuses any
// payment without a valid one), and the paid order is credited as usual.
func TestYooKassaReceipt(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	y, emu := newYooKassaReceipts(t, e, payment.ReceiptConfig{On: true, Item: "Доступ к VPN, тариф %s", VATCode: 1, TaxSystemCode: 2})
	order, err := e.svc.CreateOrder(ctx, e.user, "month", y.Provider(), y.Currency())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := y.Start(ctx, order, e.user); !errors.Is(err, wgbot.ErrReceiptContactNeeded) {
		t.Fatalf("start without a contact: %v, want ErrReceiptContactNeeded", err)
	}
	if n := len(emu.Payments()); n != 0 {
		t.Fatalf("%d payments created without a receipt", n)
	}
	if _, err := e.svc.SetReceiptContact(ctx, e.user, "not a contact"); !errors.Is(err, wgbot.ErrReceiptContact) {
		t.Fatalf("bad contact: %v", err)
	}
	if c, err := e.svc.SetReceiptContact(ctx, e.user, "8 (900) 123-45-67"); err != nil || c != "79001234567" {
		t.Fatalf("set contact: %q %v", c, err)
	}
	_, id := startYooKassa(t, e, y, emu)
	r, ok := emu.Receipt(id)
	if !ok || r.Customer.Phone != "79001234567" || r.TaxSystemCode != 2 || len(r.Items) != 1 {
		t.Fatalf("receipt: %+v %v", r, ok)
	}
	it := r.Items[0]
	if it.Description != "Доступ к VPN, тариф month" || it.VATCode != 1 || it.PaymentSubject != "service" ||
		it.PaymentMode != "full_payment" || it.Quantity != "1" || it.Amount.Currency != "RUB" {
		t.Fatalf("receipt item: %+v", it)
	}
	if p, _ := emu.Payment(id); p.Amount != it.Amount {
		t.Fatalf("item %v, payment %v", it.Amount, p.Amount)
	}
	if err := emu.Succeed(id); err != nil {
		t.Fatal(err)
	}
	if code := deliver(y, yooSource, emu.NotificationBody("payment.succeeded", id), nil); code != http.StatusOK {
		t.Fatalf("notification answered %d", code)
	}
	if n := e.count(t, `SELECT count(*) FROM payments`); n != 1 {
		t.Fatalf("%d payments credited, want 1", n)
	}
}

// TestYooKassaReceiptSettings: bad receipt settings stop start-up with the
// setting's name.
func TestYooKassaReceiptSettings(t *testing.T) {
	e := setup(t)
	for want, rc := range map[string]payment.ReceiptConfig{
		"YOOKASSA_VAT_CODE":        {On: true, VATCode: 13},
		"YOOKASSA_TAX_SYSTEM_CODE": {On: true, VATCode: 1, TaxSystemCode: 7},
		"YOOKASSA_RECEIPT_ITEM":    {On: true, VATCode: 1, Item: "100% VPN"},
	} {
		_, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: "http://127.0.0.1:1", ShopID: "s", SecretKey: "k",
			ReturnURL: "https://t.me/b", Receipts: rc}, e.svc, metrics.New(nil), e.log)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: err = %v, want one naming %s", rc, err, want)
		}
	}
}
