package telegram

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"wgbot"
	"wgbot/service"
)

// TestStarsPayment: Buy → plan → Stars → an XTR invoice at the plan's
// price whose payload is the order; the pre-checkout query is answered
// ok (and refused for a wrong amount); only successful_payment credits,
// delivering the config; five redeliveries and the same charge in a new
// update credit nothing more and send nothing more; a second payment extends; /refund reverses once.
func TestStarsPayment(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(4001, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.press(u, "buy")
	plans, _ := h.withButton(u.ID, "buy:plan:month")
	if !strings.Contains(plans.Text, "• Month: 30 days, up to 3 devices, 150 ⭐") {
		t.Errorf("plans screen:\n%s", plans.Text)
	}
	h.press(u, "buy:plan:month")
	h.press(u, "buy:pay:stars:month")
	invoiceMsg := h.waitMessages(u.ID, 2)[1]
	inv := invoiceMsg.Invoice
	if inv == nil || inv.Currency != "XTR" || inv.Total() != 150 || inv.ProviderToken != "" || len(inv.Prices) != 1 {
		t.Fatalf("invoice = %+v", inv)
	}
	var orderID, amount int64
	var provider, currency, status string
	h.queryRow(`SELECT id, provider, amount, currency, status FROM orders`, nil, &orderID, &provider, &amount, &currency, &status)
	if inv.Payload != strconv.FormatInt(orderID, 10) || provider != "stars" || amount != 150 || currency != "XTR" || status != "pending" {
		t.Errorf("invoice payload %q; order %d %s %d %s %s", inv.Payload, orderID, provider, amount, currency, status)
	}

	// Pre-checkout: a question, answered in time, crediting nothing.
	for _, tc := range []struct {
		name     string
		from     int64
		currency string
		total    int
		payload  string
		ok       bool
	}{
		{"the order as invoiced", u.ID, "XTR", 150, inv.Payload, true},
		{"a lower amount", u.ID, "XTR", 149, inv.Payload, false},
		{"another user's order", 4002, "XTR", 150, inv.Payload, false},
		{"no such order", u.ID, "XTR", 150, "987654", false},
		{"a payload that is no order", u.ID, "XTR", 150, "month", false},
		{"another currency", u.ID, "USD", 150, inv.Payload, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := user(tc.from, "en")
			id := h.tg.PreCheckout(from, tc.currency, tc.total, tc.payload)
			var ans struct {
				ok  bool
				msg string
			}
			h.wait("pre-checkout answer", func() bool {
				a, done := h.tg.PreCheckoutAnswer(id)
				ans.ok, ans.msg = a.OK, a.ErrorMessage
				return done
			})
			if ans.ok != tc.ok || (!tc.ok && ans.msg == "") {
				t.Errorf("answer ok=%v %q, want ok=%v", ans.ok, ans.msg, tc.ok)
			}
		})
	}
	var payments int
	h.queryRow(`SELECT count(*) FROM payments`, nil, &payments)
	if payments != 0 {
		t.Fatalf("%d payments after pre-checkout queries alone", payments)
	}

	paid := h.tg.SuccessfulPayment(u, "XTR", 150, inv.Payload, "stxCHARGE-1")
	msgs := h.waitMessages(u.ID, 5)
	if msgs[2].Document == nil || !strings.HasPrefix(msgs[4].Text, "Payment received, thank you! Your subscription is active until") {
		t.Fatalf("after the payment:\n%s", dump(msgs))
	}
	checkConfig(t, h, u.ID, msgs[2].Document.Data)
	for range 5 {
		if err := h.tg.Redeliver(paid); err != nil {
			t.Fatal(err)
		}
	}
	// The same charge in a new update (as after a lost confirmation) is
	// recognised by its charge id.
	h.tg.SuccessfulPayment(u, "XTR", 150, inv.Payload, "stxCHARGE-1")
	h.idle()
	var credited int
	var orderStatus string
	h.queryRow(`SELECT count(*), (SELECT status FROM orders) FROM payments WHERE provider = 'stars' AND provider_payment_id = 'stxCHARGE-1' AND amount = 150 AND currency = 'XTR'`,
		nil, &credited, &orderStatus)
	if credited != 1 || orderStatus != "paid" {
		t.Errorf("%d payments credited, order %s; want 1, paid", credited, orderStatus)
	}
	if got := len(h.messages(u.ID)); got != 5 {
		t.Errorf("redeliveries sent %d more messages:\n%s", got-5, dump(h.messages(u.ID)[5:]))
	}

	// A second purchase while live extends the same subscription.
	h.press(u, "buy")
	h.press(u, "buy:plan:month")
	h.press(u, "buy:pay:stars:month")
	inv2 := h.waitMessages(u.ID, 6)[5].Invoice
	if inv2 == nil {
		t.Fatalf("no second invoice:\n%s", dump(h.messages(u.ID)))
	}
	// Telegram charges only after the bot approved the pre-checkout.
	pre := h.tg.PreCheckout(u, "XTR", 150, inv2.Payload)
	h.wait("pre-checkout answer", func() bool { a, done := h.tg.PreCheckoutAnswer(pre); return done && a.OK })
	h.tg.SuccessfulPayment(u, "XTR", 150, inv2.Payload, "stxCHARGE-2")
	extended := h.waitMessages(u.ID, 7)[6]
	if !strings.HasPrefix(extended.Text, "Payment received, thank you! Your subscription is extended until") {
		t.Errorf("second payment (invoice %q) answered %q:\n%s", inv2.Payload, extended.Text, dump(h.messages(u.ID)))
	}

	// The admin refunds the first charge: Stars go back once, the days too.
	admin := user(adminID, "en")
	h.tg.SendText(admin, "/refund stxCHARGE-1")
	reply := h.waitMessages(adminID, 1)[0]
	if reply.Text != text(langEN, mAdminRefunded, "stxCHARGE-1", u.ID, "30 days") || !h.tg.Refunded("stxCHARGE-1") {
		t.Errorf("refund: admin told %q, refunded %v", reply.Text, h.tg.Refunded("stxCHARGE-1"))
	}
	h.tg.SendText(admin, "/refund stxCHARGE-1")
	if again := h.waitMessages(adminID, 2)[1]; again.Text != text(langEN, mAdminRefundAgain, "stxCHARGE-1") {
		t.Errorf("second refund: admin told %q", again.Text)
	}
	var refunded, stillCredited int
	h.queryRow(`SELECT count(*) FILTER (WHERE status = 'refunded'), count(*) FILTER (WHERE status = 'credited') FROM payments`, nil, &refunded, &stillCredited)
	if refunded != 1 || stillCredited != 1 {
		t.Errorf("payments: %d refunded, %d credited; want 1 and 1", refunded, stillCredited)
	}
	h.wait("the user told of the refund", func() bool {
		msgs := h.messages(u.ID)
		return strings.HasPrefix(msgs[len(msgs)-1].Text, "Your payment was refunded. Your subscription now ends on")
	})
	h.tg.SendText(admin, "/refund stxNOSUCH")
	if unknown := h.waitMessages(adminID, 3)[2]; unknown.Text != text(langEN, mErrNotFound) {
		t.Errorf("unknown charge: admin told %q", unknown.Text)
	}
	// Revenue counts what was credited and not refunded, by currency.
	h.tg.SendText(admin, "/stats")
	if stats := h.waitMessages(adminID, 4)[3]; !strings.HasSuffix(stats.Text, "by provider:\n• stars: 150 ⭐\n"+text(langEN, mStatsRevenueExtra, text(langEN, mAdminRevenueNone), 0, 0, 0)) {
		t.Errorf("/stats = %q", stats.Text)
	}
}

// fakeCheckout is a provider like YooKassa: a payment page URL.
type fakeCheckout struct {
	orders chan wgbot.Order
	fail   error
}

func (f *fakeCheckout) Provider() string { return "card" }
func (f *fakeCheckout) Currency() string { return "RUB" }
func (f *fakeCheckout) Title(lang string) string {
	if lang == langRU {
		return "Картой"
	}
	return "Bank card"
}

func (f *fakeCheckout) TitleVia(lang string) string {
	if lang == langRU {
		return "банковскую карту"
	}
	return "a bank card"
}

func (f *fakeCheckout) Start(_ context.Context, o wgbot.Order, _ wgbot.User) (string, error) {
	if f.fail != nil {
		return "", f.fail
	}
	f.orders <- o
	return "https://pay.example.com/checkout/" + strconv.FormatInt(o.ID, 10), nil
}

// TestCheckoutPayment: another provider's method is offered next to
// Stars with its own price, its payment link is shown as a URL button,
// and the payment job queued with the credit tells the user.
func TestCheckoutPayment(t *testing.T) {
	t.Parallel()
	card := &fakeCheckout{orders: make(chan wgbot.Order, 1)}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card}})
	u := user(4101, "ru")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.press(u, "buy")
	plans, _ := h.withButton(u.ID, "buy:plan:quarter")
	if !strings.Contains(plans.Text, "• 3 месяца: 90 дней, до 3 устройств, 400 ⭐ / 499.00 RUB") {
		t.Errorf("plans screen:\n%s", plans.Text)
	}
	h.press(u, "buy:plan:quarter")
	methods, _ := h.withButton(u.ID, "buy:pay:card:quarter")
	if got := methods.Keyboard[1][0].Text; got != "Картой · 499.00 RUB" {
		t.Errorf("card button %q", got)
	}
	h.press(u, "buy:pay:card:quarter")
	order := <-card.orders
	link := h.waitMessages(u.ID, 2)[1]
	if order.Provider != "card" || order.Currency != "RUB" || order.Amount != 49900 || order.Plan != "quarter" ||
		link.Keyboard[0][0].URL != "https://pay.example.com/checkout/"+strconv.FormatInt(order.ID, 10) {
		t.Errorf("order %+v, link message %+v", order, link)
	}

	// The provider's webhook credits; the payment job queued with the
	// credit tells the user, once however often the webhook comes.
	for range 3 {
		if _, err := h.svc.PayOrder(h.ctx, service.Payment{Provider: "card", ProviderPaymentID: "pay-1", OrderID: order.ID, Amount: 49900, Currency: "RUB"}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := h.waitMessages(u.ID, 5)
	if msgs[2].Document == nil || !strings.HasPrefix(msgs[4].Text, "Оплата получена, спасибо!") {
		t.Errorf("after the payment:\n%s", dump(msgs))
	}
	checkConfig(t, h, u.ID, msgs[2].Document.Data)
	time.Sleep(500 * time.Millisecond)
	if n := len(h.messages(u.ID)); n != 5 {
		t.Errorf("%d messages after three deliveries of one payment, want 5:\n%s", n, dump(h.messages(u.ID)))
	}

	// A checkout that cannot start says so without its error text.
	card.fail = wgbot.Errorf(wgbot.EUnavailable, "provider_down", "yookassa: 503 from api.yookassa.ru")
	h.press(u, "buy")
	h.press(u, "buy:plan:quarter")
	h.press(u, "buy:pay:card:quarter")
	if got := h.waitMessages(u.ID, 6)[5].Text; got != text(langRU, mErrUnavailable) {
		t.Errorf("failed checkout answered %q", got)
	}
	card.fail = errBoom // not a wgbot error: the user hears the page did not open
	h.press(u, "buy")
	h.press(u, "buy:plan:quarter")
	h.press(u, "buy:pay:card:quarter")
	if got := h.waitMessages(u.ID, 7)[6].Text; got != text(langRU, mErrCheckoutStart) || strings.Contains(got, "0xdeadbeef") {
		t.Errorf("failed checkout answered %q", got)
	}
}

// TestPayPressesReuseTheOpenOrder: twenty presses of one Pay button make
// one order and one provider checkout; every press shows the same link.
// Stars presses reuse their own open order the same way.
func TestPayPressesReuseTheOpenOrder(t *testing.T) {
	t.Parallel()
	card := &fakeCheckout{orders: make(chan wgbot.Order, 20)}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card}})
	u := user(4201, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.press(u, "buy")
	h.press(u, "buy:plan:quarter")
	h.wait("the ways to pay", func() bool { _, ok := h.withButton(u.ID, "buy:pay:card:quarter"); return ok })
	base := len(h.messages(u.ID))
	// One press after another, as fast as a user can and within the
	// per-user update rate; a press answered "busy" (the previous one's
	// handler still finishing) does not count.
	for shown := 0; shown < 20; time.Sleep(550 * time.Millisecond) {
		if ans := h.press(u, "buy:pay:card:quarter"); ans.Text == text(langEN, mBusy) {
			continue
		}
		shown++
		h.waitMessages(u.ID, base+shown)
	}
	msgs := h.messages(u.ID)[base:]
	for _, m := range msgs {
		if len(m.Keyboard) == 0 || m.Keyboard[0][0].URL != msgs[0].Keyboard[0][0].URL {
			t.Fatalf("presses showed different checkouts:\n%s", dump(msgs))
		}
	}
	if n := len(card.orders); n != 1 {
		t.Errorf("%d provider checkouts for 20 presses, want 1", n)
	}
	var orders int
	h.queryRow(`SELECT count(*) FROM orders`, nil, &orders)
	if orders != 1 {
		t.Errorf("%d orders for 20 presses, want 1", orders)
	}
	for shown := 0; shown < 5; time.Sleep(550 * time.Millisecond) {
		if ans := h.press(u, "buy:pay:stars:quarter"); ans.Text == text(langEN, mBusy) {
			continue
		}
		shown++
		h.waitMessages(u.ID, base+20+shown)
	}
	h.queryRow(`SELECT count(*) FROM orders`, nil, &orders)
	if orders != 2 {
		t.Errorf("%d orders after 5 Stars presses, want 2", orders)
	}
}
