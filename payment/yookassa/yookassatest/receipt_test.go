package yookassatest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"wgbot/payment/yookassa"
	"wgbot/payment/yookassa/yookassatest"
)

const goodReceipt = `{"customer":{"email":"a@example.com"},"tax_system_code":2,
 "items":[{"description":"VPN, 30 days","quantity":"1","amount":{"value":"199.00","currency":"RUB"},
  "vat_code":1,"payment_subject":"service","payment_mode":"full_payment"}]}`

func paymentBody(receipt string) string {
	b := `{"amount":{"value":"199.00","currency":"RUB"},"capture":true,` +
		`"confirmation":{"type":"redirect","return_url":"https://t.me/wgbot"}`
	if receipt != "" {
		b += `,"receipt":` + receipt
	}
	return b + "}"
}

// TestReceiptValidation: a shop with a cash register gets every payment
// without a valid receipt refused, for the reason YooKassa documents, and
// the good one is kept with the payment.
func TestReceiptValidation(t *testing.T) {
	emu := newEmulator(t)
	emu.RequireReceipts = true
	bad := map[string]string{
		"no receipt":             "",
		"no customer":            strings.Replace(goodReceipt, `"email":"a@example.com"`, ``, 1),
		"bad email":              strings.Replace(goodReceipt, `a@example.com`, `a@`, 1),
		"bad phone":              strings.Replace(goodReceipt, `"email":"a@example.com"`, `"phone":"+7 900"`, 1),
		"vat code 0":             strings.Replace(goodReceipt, `"vat_code":1`, `"vat_code":0`, 1),
		"vat code 13":            strings.Replace(goodReceipt, `"vat_code":1`, `"vat_code":13`, 1),
		"tax system 7":           strings.Replace(goodReceipt, `"tax_system_code":2`, `"tax_system_code":7`, 1),
		"items do not add up":    strings.Replace(goodReceipt, `"199.00"`, `"198.00"`, 1),
		"other currency":         strings.Replace(goodReceipt, `"RUB"`, `"USD"`, 1),
		"fractional quantity":    strings.Replace(goodReceipt, `"quantity":"1"`, `"quantity":"0.5"`, 1),
		"unknown subject":        strings.Replace(goodReceipt, `"service"`, `"vpn"`, 1),
		"unknown mode":           strings.Replace(goodReceipt, `"full_payment"`, `"whenever"`, 1),
		"empty description":      strings.Replace(goodReceipt, `VPN, 30 days`, ``, 1),
		"description over limit": strings.Replace(goodReceipt, `VPN, 30 days`, strings.Repeat("я", 129), 1),
		"no items":               `{"customer":{"email":"a@example.com"},"items":[]}`,
	}
	for name, receipt := range bad {
		status, answer := rawCreate(t, emu, paymentBody(receipt), "k-"+strings.ReplaceAll(name, " ", "-"), true)
		if status != http.StatusBadRequest || answer["parameter"] != "receipt" {
			t.Errorf("%s: got %d %v, want 400 about the receipt", name, status, answer)
		}
	}
	if n := len(emu.Payments()); n != 0 {
		t.Fatalf("%d payments created from refused requests", n)
	}
	for i, receipt := range []string{goodReceipt,
		strings.Replace(goodReceipt, `"email":"a@example.com"`, `"phone":"79001234567"`, 1),
		strings.Replace(goodReceipt, `"vat_code":1`, `"vat_code":12`, 1)} {
		if status, answer := rawCreate(t, emu, paymentBody(receipt), "good-"+strconv.Itoa(i), true); status != http.StatusOK {
			t.Fatalf("good receipt refused: %d %v", status, answer)
		}
	}
	p := emu.Payments()[0]
	r, ok := emu.Receipt(p.ID)
	if !ok || r.Customer.Email != "a@example.com" || r.Items[0].VATCode != 1 || r.TaxSystemCode != 2 {
		t.Fatalf("receipt kept: %+v %v", r, ok)
	}
}

// TestClientRefusesBadReceipt: the client finds the same faults before
// sending anything.
func TestClientRefusesBadReceipt(t *testing.T) {
	emu := newEmulator(t)
	_, err := emu.Client().CreatePayment(context.Background(), yookassa.CreatePaymentRequest{
		Amount: yookassa.Amount{Value: "199.00", Currency: "RUB"}, ReturnURL: "https://t.me/wgbot",
		Receipt: &yookassa.Receipt{Items: []yookassa.ReceiptItem{{Description: "VPN", Quantity: "1",
			Amount: yookassa.Amount{Value: "100.00", Currency: "RUB"}, VATCode: 13}}},
	}, "k1")
	if err == nil || !strings.Contains(err.Error(), "customer") || !strings.Contains(err.Error(), "vat_code") {
		t.Fatalf("err = %v, want customer and vat_code problems", err)
	}
	if n := len(emu.Requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// TestSavedMethodCharges: a card saved with the payer's consent can be
// charged without them; a failing card cancels the charge with its reason;
// a card never saved cannot be charged.
func TestSavedMethodCharges(t *testing.T) {
	emu := newEmulator(t)
	ctx := context.Background()
	c := emu.Client()
	first, err := c.CreatePayment(ctx, yookassa.CreatePaymentRequest{Amount: yookassa.Amount{Value: "199.00", Currency: "RUB"},
		ReturnURL: "https://t.me/wgbot", SavePaymentMethod: true}, "first")
	if err != nil {
		t.Fatal(err)
	}
	unsaved := newPayment(t, emu, "unsaved")
	for _, id := range []string{first.ID, unsaved.ID} {
		if err := emu.Succeed(id); err != nil {
			t.Fatal(err)
		}
	}
	first, _ = c.GetPayment(ctx, first.ID)
	unsaved, _ = c.GetPayment(ctx, unsaved.ID)
	if first.PaymentMethod == nil || !first.PaymentMethod.Saved || unsaved.PaymentMethod == nil || unsaved.PaymentMethod.Saved {
		t.Fatalf("methods: %+v, %+v", first.PaymentMethod, unsaved.PaymentMethod)
	}
	charge := func(method, key string) (yookassa.Payment, error) {
		return c.CreatePayment(ctx, yookassa.CreatePaymentRequest{Amount: yookassa.Amount{Value: "199.00", Currency: "RUB"},
			PaymentMethodID: method}, key)
	}
	if _, err := charge(unsaved.PaymentMethod.ID, "c0"); err == nil {
		t.Fatal("an unsaved card was charged")
	}
	ok, err := charge(first.PaymentMethod.ID, "c1")
	if err != nil || ok.Status != yookassa.StatusSucceeded || ok.Confirmation != nil {
		t.Fatalf("charge: %+v %v", ok, err)
	}
	again, err := charge(first.PaymentMethod.ID, "c1")
	if err != nil || again.ID != ok.ID {
		t.Fatalf("a retry with the same key charged again: %s vs %s (%v)", again.ID, ok.ID, err)
	}
	if err := emu.FailMethod(first.PaymentMethod.ID, yookassatest.ReasonInsufficientFunds); err != nil {
		t.Fatal(err)
	}
	failed, err := charge(first.PaymentMethod.ID, "c2")
	if err != nil || failed.Status != yookassa.StatusCanceled || failed.CancellationDetails.Reason != yookassatest.ReasonInsufficientFunds {
		t.Fatalf("failed charge: %+v %v", failed, err)
	}
}

// TestEmulatorChecksReceiptsOnItsOwn: receipts the client's own check
// would stop, sent as the client encodes them but past that check, are
// refused by the emulator by YooKassa's rules, with YooKassa's error
// object; and the rules are the emulator's own: a fractional quantity
// that YooKassa accepts (the client, selling whole periods, does not) is
// taken, and a vat_code written as a string is not.
func TestEmulatorChecksReceiptsOnItsOwn(t *testing.T) {
	emu := newEmulator(t)
	amount := yookassa.Amount{Value: "199.00", Currency: "RUB"}
	good := func() yookassa.Receipt {
		return yookassa.Receipt{Customer: yookassa.Customer{Email: "a@example.com"}, Items: []yookassa.ReceiptItem{{
			Description: "VPN, 30 days", Quantity: "1", Amount: amount, VATCode: 1,
			PaymentSubject: yookassa.SubjectService, PaymentMode: yookassa.ModeFullPay}}}
	}
	body := func(r yookassa.Receipt) string {
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return paymentBody(string(raw))
	}
	bad := map[string]func(*yookassa.Receipt){
		"no customer":         func(r *yookassa.Receipt) { r.Customer = yookassa.Customer{} },
		"items do not add up": func(r *yookassa.Receipt) { r.Items[0].Amount.Value = "99.00" },
		"vat code 13":         func(r *yookassa.Receipt) { r.Items[0].VATCode = 13 },
		"no vat code":         func(r *yookassa.Receipt) { r.Items[0].VATCode = 0 },
		"tax system 7":        func(r *yookassa.Receipt) { r.TaxSystemCode = 7 },
		"long description":    func(r *yookassa.Receipt) { r.Items[0].Description = strings.Repeat("я", 129) },
		"no items":            func(r *yookassa.Receipt) { r.Items = nil },
		"other currency":      func(r *yookassa.Receipt) { r.Items[0].Amount.Currency = "USD" },
		"zero quantity":       func(r *yookassa.Receipt) { r.Items[0].Quantity = "0" },
	}
	for name, spoil := range bad {
		r := good()
		spoil(&r)
		if yookassa.ValidateReceipt(r, amount) == nil {
			t.Fatalf("%s: the client's check would have let it through; the case proves nothing", name)
		}
		status, answer := rawCreate(t, emu, body(r), "own-"+strings.ReplaceAll(name, " ", "-"), true)
		if status != http.StatusBadRequest || answer["type"] != "error" || answer["code"] != "invalid_request" ||
			answer["parameter"] != "receipt" || answer["id"] == "" || answer["description"] == "" {
			t.Errorf("%s: got %d %v, want YooKassa's 400 invalid_request about the receipt", name, status, answer)
		}
	}
	if n := len(emu.Payments()); n != 0 {
		t.Fatalf("%d payments created from refused receipts", n)
	}

	half := good()
	half.Items[0].Quantity, half.Items[0].Amount.Value = "0.5", "398.00"
	if yookassa.ValidateReceipt(half, amount) == nil {
		t.Fatal("the client now takes fractional quantities; pick another case")
	}
	if status, answer := rawCreate(t, emu, body(half), "own-half", true); status != http.StatusOK {
		t.Errorf("a fractional quantity YooKassa accepts was refused: %d %v", status, answer)
	}
	asString := strings.Replace(body(good()), `"vat_code":1`, `"vat_code":"1"`, 1)
	if status, answer := rawCreate(t, emu, asString, "own-string-vat", true); status != http.StatusBadRequest || answer["parameter"] != "receipt" {
		t.Errorf("a vat_code written as a string: %d %v, want refused", status, answer)
	}
}
