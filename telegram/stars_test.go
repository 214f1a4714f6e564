package telegram

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"wgbot"

	"wgbot/telegram/tgtest"
)

// starSubscriptionLink presses Buy → Month → "monthly, renews
// automatically" and returns the invoice link the bot sent.
func starSubscriptionLink(t *testing.T, h *harness, u tgtest.User) (string, tgtest.Invoice) {
	t.Helper()
	h.press(u, "buy")
	h.press(u, "buy:plan:month")
	h.press(u, "buy:sub:month")
	var link string
	h.wait("subscription link", func() bool {
		for _, m := range h.messages(u.ID) {
			for _, row := range m.Keyboard {
				for _, b := range row {
					if strings.HasPrefix(b.URL, "https://t.me/$") {
						link = b.URL
					}
				}
			}
		}
		return link != ""
	})
	inv, ok := h.tg.InvoiceLink(link)
	if !ok {
		t.Fatalf("the bot sent link %q, which createInvoiceLink did not make", link)
	}
	return link, inv
}

// TestStarsSubscriptionRoundTrip: a monthly plan offers a Stars
// subscription; its link is a 30-day XTR subscription invoice for the
// order; the first charge starts 30 days; two renewals each extend once
// (a redelivered renewal changes nothing); "My subscription" says when it
// renews and turns renewal off through editUserStarSubscription; after
// that Telegram charges no more and the time paid for stays.
func TestStarsSubscriptionRoundTrip(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(4101, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	link, inv := starSubscriptionLink(t, h, u)
	var orderID int64
	h.queryRow(`SELECT id FROM orders WHERE provider = 'stars' AND status = 'pending'`, nil, &orderID)
	if inv.SubscriptionPeriod != 2592000 || inv.Currency != "XTR" || inv.Total() != 150 || inv.Payload != strconv.FormatInt(orderID, 10) {
		t.Fatalf("subscription invoice = %+v, order %d", inv, orderID)
	}
	pc := h.tg.PreCheckout(u, "XTR", 150, inv.Payload)
	h.wait("pre-checkout answer", func() bool { _, done := h.tg.PreCheckoutAnswer(pc); return done })
	if a, _ := h.tg.PreCheckoutAnswer(pc); !a.OK {
		t.Fatalf("pre-checkout refused: %q", a.ErrorMessage)
	}
	if _, err := h.tg.PayInvoiceLink(u, link, "stxSUB-1"); err != nil {
		t.Fatal(err)
	}
	paidMessages := func(prefix string, n int) {
		t.Helper()
		h.eventually(prefix, func() bool {
			got := 0
			for _, m := range h.messages(u.ID) {
				if strings.HasPrefix(m.Text, prefix) {
					got++
				}
			}
			return got == n
		})
	}
	paidMessages("Payment received, thank you! Your subscription is active until", 1)
	var firstEnd time.Time
	h.queryRow(`SELECT expires_at FROM subscriptions WHERE status = 'active'`, nil, &firstEnd)

	h.press(u, "sub!")
	screen, ok := h.withButton(u.ID, "sub:renew:off")
	if !ok || !strings.Contains(screen.Text, "Renews automatically on ") {
		t.Fatalf("My subscription:\n%s", dump(h.messages(u.ID)))
	}

	for i, charge := range []string{"stxSUB-2", "stxSUB-3"} {
		upd, _, err := h.tg.RenewSubscription(u, "stxSUB-1", charge)
		if err != nil {
			t.Fatal(err)
		}
		paidMessages("Payment received, thank you! Your subscription is extended until", i+1)
		for range 3 {
			if err := h.tg.Redeliver(upd); err != nil {
				t.Fatal(err)
			}
		}
		h.idle()
		var end time.Time
		h.queryRow(`SELECT expires_at FROM subscriptions WHERE status = 'active'`, nil, &end)
		if want := firstEnd.AddDate(0, 0, 30*(i+1)); !end.Equal(want) {
			t.Fatalf("after renewal %d the subscription ends %s, want %s", i+1, end, want)
		}
	}

	// The reminder before expiry: renewal is on, so nothing to pay.
	remind := func() string {
		t.Helper()
		reg, err := h.svc.UserByTelegramID(h.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := h.svc.Subscription(h.ctx, reg)
		if err != nil {
			t.Fatal(err)
		}
		before := len(h.messages(u.ID))
		if err := h.bot.ExpiryReminder(h.ctx, reg, sub, 3); err != nil {
			t.Fatal(err)
		}
		return h.waitMessages(u.ID, before+1)[before].Text
	}
	if got := remind(); !strings.HasPrefix(got, "Your subscription renews automatically on ") || !strings.Contains(got, "in 3 days") {
		t.Fatalf("reminder with renewal on: %q", got)
	}

	h.press(u, "sub!")
	h.press(u, "sub:renew:off")
	h.eventually("the Stars subscription cancelled with Telegram", func() bool { return h.tg.SubscriptionCanceled("stxSUB-1") })
	h.eventually("the renewal off", func() bool { _, ok := h.withButton(u.ID, "sub:renew:on"); return ok })
	screen, ok = h.withButton(u.ID, "sub:renew:on")
	if !ok || !strings.Contains(screen.Text, "Auto-renewal is off") {
		t.Fatalf("after cancelling:\n%s", dump(h.messages(u.ID)))
	}
	if got := remind(); !strings.HasPrefix(got, "Your subscription ends on ") {
		t.Fatalf("reminder with renewal off: %q", got)
	}
	if _, _, err := h.tg.RenewSubscription(u, "stxSUB-1", "stxSUB-4"); !errors.Is(err, tgtest.ErrSubscriptionCanceled) {
		t.Fatalf("a cancelled subscription was charged again: %v", err)
	}
	h.idle()
	var charges int
	var end time.Time
	h.queryRow(`SELECT count(*), (SELECT expires_at FROM subscriptions WHERE status = 'active') FROM payments WHERE provider = 'stars' AND status = 'credited'`,
		nil, &charges, &end)
	if charges != 3 || !end.Equal(firstEnd.AddDate(0, 0, 60)) {
		t.Fatalf("after the cancel: %d charges, ends %s; want 3 and %s (the time paid for stays)", charges, end, firstEnd.AddDate(0, 0, 60))
	}

	// Renewal can be turned on again; Telegram then charges again.
	h.press(u, "sub:renew:on")
	h.eventually("re-enabled with Telegram", func() bool { return !h.tg.SubscriptionCanceled("stxSUB-1") })
	h.eventually("the renewal on", func() bool { _, ok := h.withButton(u.ID, "sub:renew:off"); return ok })
	if _, _, err := h.tg.RenewSubscription(u, "stxSUB-1", "stxSUB-4"); err != nil {
		t.Fatalf("a re-enabled subscription was not charged: %v", err)
	}
	paidMessages("Payment received, thank you! Your subscription is extended until", 3)
}

// TestGiftLink: Buy → Month → gift: a Stars invoice for a gift order; the
// payment gives the buyer (not extended) a one-time link; a new user
// opening it gets a subscription and a config; the next one is told it
// was taken; the payment redelivered shows the same link again.
func TestGiftLink(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	buyer, friend, late := user(4201, "en"), user(4202, "ru"), user(4203, "en")
	h.tg.SendText(buyer, "/start")
	h.waitMessages(buyer.ID, 1)
	h.press(buyer, "buy")
	h.press(buyer, "buy:plan:month")
	h.press(buyer, "buy:gift:month")
	inv := h.waitMessages(buyer.ID, 2)[1].Invoice
	if inv == nil || inv.Currency != "XTR" || inv.Total() != 150 || !strings.HasPrefix(inv.Title, "Gift: ") {
		t.Fatalf("gift invoice:\n%s", dump(h.messages(buyer.ID)))
	}
	pc := h.tg.PreCheckout(buyer, "XTR", 150, inv.Payload)
	h.wait("pre-checkout answer", func() bool { _, done := h.tg.PreCheckoutAnswer(pc); return done })
	paid := h.tg.SuccessfulPayment(buyer, "XTR", 150, inv.Payload, "stxGIFT-1")
	ready := h.waitMessages(buyer.ID, 3)[2]
	at := strings.Index(ready.Text, "https://t.me/")
	if !strings.HasPrefix(ready.Text, "Your gift is paid: 30 days of VPN.") || at < 0 {
		t.Fatalf("after paying:\n%s", dump(h.messages(buyer.ID)))
	}
	link := ready.Text[at:]
	_, payload, ok := strings.Cut(link, "?start=")
	if !ok || !strings.HasPrefix(payload, "gift_") || len(payload) > 64 {
		t.Fatalf("gift link %q", link)
	}
	var subs int
	h.queryRow(`SELECT count(*) FROM subscriptions`, nil, &subs)
	if subs != 0 {
		t.Fatalf("the gift's payment made %d subscriptions", subs)
	}
	// The link came from the gift_ready job queued with the credit: a
	// redelivered payment queues no second one.
	if err := h.tg.Redeliver(paid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // room for a second link, if one were coming
	if n := len(h.messages(buyer.ID)); n != 3 {
		t.Fatalf("a redelivered payment sent more:\n%s", dump(h.messages(buyer.ID)))
	}
	var jobs int
	h.queryRow(`SELECT count(*) FROM river_job WHERE kind = 'gift_ready'`, nil, &jobs)
	if jobs != 1 {
		t.Fatalf("%d gift_ready jobs for one gift", jobs)
	}

	h.tg.SendText(friend, "/start "+payload)
	msgs := h.waitMessages(friend.ID, 3)
	if msgs[0].Document == nil || !strings.HasPrefix(msgs[2].Text, "🎁 Вам подарили VPN на 30 дней! Подписка действует до") {
		t.Fatalf("the friend's gift:\n%s", dump(msgs))
	}
	checkConfig(t, h, friend.ID, msgs[0].Document.Data)
	h.tg.SendText(late, "/start "+payload)
	if got := h.waitMessages(late.ID, 1)[0].Text; !strings.Contains(got, "This gift was already taken") {
		t.Fatalf("the second opener was told %q", got)
	}
	var gifts int
	h.queryRow(`SELECT count(*) FROM payments WHERE kind = 'gift' AND user_id = (SELECT id FROM users WHERE telegram_id = $1)`, []any{friend.ID}, &gifts)
	if gifts != 1 {
		t.Fatalf("%d gift credits for the friend", gifts)
	}
}

// TestRefundEndsStarRenewal: /refund of a Stars subscription's charge
// returns the Stars, takes its days back and turns the renewal off with
// Telegram, so nothing more is charged; /refund of a redeemed gift's
// payment is refused and returns nothing.
func TestRefundEndsStarRenewal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u, admin := user(4301, "en"), user(adminID, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	link, inv := starSubscriptionLink(t, h, u)
	pc := h.tg.PreCheckout(u, "XTR", 150, inv.Payload)
	h.wait("pre-checkout answer", func() bool { _, done := h.tg.PreCheckoutAnswer(pc); return done })
	if _, err := h.tg.PayInvoiceLink(u, link, "stxREF-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.tg.RenewSubscription(u, "stxREF-1", "stxREF-2"); err != nil {
		t.Fatal(err)
	}
	h.eventually("two charges credited", func() bool {
		var n int
		h.queryRow(`SELECT count(*) FROM payments WHERE status = 'credited'`, nil, &n)
		return n == 2
	})
	h.tg.SendText(admin, "/refund stxREF-2")
	h.eventually("the renewal ended", func() bool { return h.tg.SubscriptionCanceled("stxREF-1") })
	if !h.tg.Refunded("stxREF-2") {
		t.Fatal("the charge was not refunded with Telegram")
	}
	// The bot records the cancel just after Telegram has it.
	h.eventually("the renewal off in the database", func() bool {
		var canceled bool
		h.queryRow(`SELECT canceled_at IS NOT NULL FROM star_subscriptions`, nil, &canceled)
		return canceled
	})

	// A redeemed gift is not refunded.
	buyer, friend := user(4302, "en"), user(4303, "en")
	h.tg.SendText(buyer, "/start")
	h.waitMessages(buyer.ID, 1)
	h.press(buyer, "buy")
	h.press(buyer, "buy:plan:month")
	h.press(buyer, "buy:gift:month")
	ginv := h.waitMessages(buyer.ID, 2)[1].Invoice
	h.tg.SuccessfulPayment(buyer, "XTR", 150, ginv.Payload, "stxGIFT-R")
	ready := h.waitMessages(buyer.ID, 3)[2].Text
	_, payload, _ := strings.Cut(ready, "?start=")
	h.tg.SendText(friend, "/start "+payload)
	h.waitMessages(friend.ID, 3)
	before := len(h.messages(admin.ID))
	h.tg.SendText(admin, "/refund stxGIFT-R")
	h.waitMessages(admin.ID, before+1)
	if h.tg.Refunded("stxGIFT-R") {
		t.Fatalf("a redeemed gift was refunded:\n%s", dump(h.messages(admin.ID)))
	}
}

// TestPanelRefundOfGift: the panel refunds a gift's Stars as /refund
// does. A redeemed gift is refused before Telegram is asked, so no Stars
// go back for days someone already has; an unredeemed one is refunded and
// its link stops working.
func TestPanelRefundOfGift(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	buyer, friend, late := user(4211, "en"), user(4212, "en"), user(4213, "en")
	h.tg.SendText(buyer, "/start")
	h.waitMessages(buyer.ID, 1)
	buyGift := func(charge string, seen int) string {
		t.Helper()
		h.press(buyer, "buy")
		h.press(buyer, "buy:plan:month")
		h.press(buyer, "buy:gift:month")
		inv := h.waitMessages(buyer.ID, seen+1)[seen].Invoice
		if inv == nil {
			t.Fatalf("no gift invoice:\n%s", dump(h.messages(buyer.ID)))
		}
		pc := h.tg.PreCheckout(buyer, "XTR", 150, inv.Payload)
		h.wait("pre-checkout answer", func() bool { _, done := h.tg.PreCheckoutAnswer(pc); return done })
		h.tg.SuccessfulPayment(buyer, "XTR", 150, inv.Payload, charge)
		ready := h.waitMessages(buyer.ID, seen+2)[seen+1]
		_, payload, ok := strings.Cut(ready.Text, "?start=")
		if !ok {
			t.Fatalf("no gift link:\n%s", dump(h.messages(buyer.ID)))
		}
		return strings.Fields(payload)[0]
	}
	redeemed := buyGift("stxGIFT-PANEL-1", 1)
	h.tg.SendText(friend, "/start "+redeemed)
	h.waitMessages(friend.ID, 3)
	if _, err := h.bot.RefundPayment(h.ctx, providerStars, "stxGIFT-PANEL-1"); !errors.Is(err, wgbot.ErrGiftRedeemed) {
		t.Fatalf("panel refund of a redeemed gift: %v; want it refused", err)
	}
	if h.tg.Refunded("stxGIFT-PANEL-1") {
		t.Fatal("Telegram refunded the Stars of a redeemed gift")
	}

	open := buyGift("stxGIFT-PANEL-2", len(h.messages(buyer.ID)))
	if _, err := h.bot.RefundPayment(h.ctx, providerStars, "stxGIFT-PANEL-2"); err != nil {
		t.Fatal(err)
	}
	h.tg.SendText(late, "/start "+open)
	if got := h.waitMessages(late.ID, 1)[0].Text; !strings.Contains(got, "This gift was refunded") {
		t.Fatalf("the refunded gift's link told %q", got)
	}
	if res, err := h.bot.RefundPayment(h.ctx, providerStars, "stxGIFT-PANEL-2"); err != nil || !res.Duplicate {
		t.Fatalf("second refund: %+v, %v; want a duplicate", res, err)
	}
}
