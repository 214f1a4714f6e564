package telegram

import (
	"strings"
	"testing"
	"time"

	"wgbot"
	"wgbot/service"
)

// TestStatsAfterADay (issue 17, item 8): after a scripted day (trials,
// Stars and card payments, a refund, a cancelled checkout, open orders
// and an older one they replaced, and a user whose trial and payment lie
// 10-12 days back), every figure of /stats, in each window and both
// languages, is what the database holds. The replaced order is not a
// failed payment.
func TestStatsAfterADay(t *testing.T) {
	t.Parallel()
	day := time.Now().UTC().Truncate(24 * time.Hour)
	t.Cleanup(func() {
		if !time.Now().UTC().Truncate(24 * time.Hour).Equal(day) {
			t.Log("the test crossed midnight UTC: the today window moved under it; a failure above may be that")
		}
	})
	card := &fakeCheckout{orders: make(chan wgbot.Order, 10)}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card}})
	admin := user(adminID, "en")
	u1, u2, u3, u4, u5, u6 := user(17401, "en"), user(17402, "ru"), user(17403, "en"), user(17404, "en"), user(17405, "en"), user(17406, "en")

	h.startTrial(u1)
	h.payStars(u1, "month", "stx-day-1") // a trial that converted
	h.startTrial(u2)                     // a trial that did not, ending within 3 days
	h.tg.SendText(u3, "/start")
	h.waitMessages(u3.ID, 1)
	h.payStars(u3, "month", "stx-day-3") // paid, then refunded
	n := len(h.messages(adminID))
	h.tg.SendText(admin, "/refund stx-day-3")
	h.waitMessages(adminID, n+1)
	order := func(u wgbot.User, plan, provider, currency string) wgbot.Order {
		t.Helper()
		o, err := h.svc.CreateOrder(h.ctx, u, plan, provider, currency)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, u := range []int64{u4.ID, u5.ID} {
		h.tg.SendText(user(u, "en"), "/start")
		h.waitMessages(u, 1)
	}
	o4 := order(mustUser(h, u4.ID), "quarter", "card", "RUB") // paid by card
	if _, err := h.svc.PayOrder(h.ctx, service.Payment{Provider: "card", ProviderPaymentID: "card-day-4", OrderID: o4.ID, Amount: o4.Amount, Currency: "RUB"}); err != nil {
		t.Fatal(err)
	}
	o5 := order(mustUser(h, u5.ID), "month", "card", "RUB") // the checkout was cancelled
	if err := h.svc.CancelOrder(h.ctx, o5.ID); err != nil {
		t.Fatal(err)
	}
	// u2 opens orders for three more plans: past the open orders kept
	// per user the oldest is cancelled as replaced, which is no failed
	// payment; three stay open, not paid yet.
	order(mustUser(h, u2.ID), "month", "stars", "XTR")
	order(mustUser(h, u2.ID), "quarter", "stars", "XTR")
	order(mustUser(h, u2.ID), "year", "stars", "XTR")
	order(mustUser(h, u2.ID), "quarter", "card", "RUB")
	h.startTrial(u6)
	h.payStars(u6, "month", "stx-day-6")
	h.mustExec(`UPDATE users SET created_at = now() - interval '12 days' WHERE telegram_id = $1`, u6.ID)
	h.mustExec(`UPDATE subscriptions SET created_at = now() - interval '12 days' WHERE user_id = (SELECT id FROM users WHERE telegram_id = $1)`, u6.ID)
	h.mustExec(`UPDATE payments SET applied_at = now() - interval '10 days' WHERE provider_payment_id = 'stx-day-6'`)
	h.waitDeliveryJobs()

	// The figures the script made, checked against the database first.
	var users, live, peers, credited, canceled int64
	h.queryRow(`SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM subscriptions WHERE status = 'active'),
		(SELECT count(*) FROM peers WHERE status = 'active'), (SELECT sum(amount) FROM payments WHERE status = 'credited' AND currency = 'XTR'),
		(SELECT count(*) FROM orders WHERE status = 'canceled')`,
		nil, &users, &live, &peers, &credited, &canceled)
	if users != 7 || live != 4 || peers != 4 || credited != 300 || canceled != 2 {
		t.Fatalf("the script left %d users, %d live subscriptions, %d active peers, %d Stars credited, %d orders cancelled; want 7, 4, 4, 300, 2",
			users, live, peers, credited, canceled)
	}
	var server string
	h.queryRow(`SELECT name FROM servers`, nil, &server)
	for _, lang := range languages() {
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, adminID)
		window := func(name msg, newUsers, trials, converted int, conversion string, payments, failed int, revenue ...string) string {
			lines := make([]string, len(revenue)/2)
			for i := range lines {
				lines[i] = text(lang, mStatsRevenue, revenue[2*i], revenue[2*i+1])
			}
			return text(lang, mStatsWindow, text(lang, name), newUsers, trials, converted, trials, conversion, payments, failed, strings.Join(lines, "\n")) +
				"\n" + text(lang, mStatsRevenueExtra, text(lang, mAdminRevenueNone), 0, 0, 0)
		}
		want := text(lang, mAdminStats, strings.Join([]string{
			text(lang, mStatsNow, 7, 4, 1, 1, 3, text(lang, mStatsServer, server, 4)) + "\n" + text(lang, mStatsPromos, 0, 0),
			window(mStatsToday, 6, 2, 1, "50%", 2, 1, "card", "499.00 RUB", "stars", "150 ⭐"),
			window(mStatsWeek, 6, 2, 1, "50%", 2, 1, "card", "499.00 RUB", "stars", "150 ⭐"),
			window(mStatsMonth, 7, 3, 2, "66%", 3, 1, "card", "499.00 RUB", "stars", "300 ⭐"),
		}, "\n\n"))
		n := len(h.messages(adminID))
		h.tg.SendText(admin, "/stats")
		if got := h.waitMessages(adminID, n+1)[n].Text; got != want {
			t.Errorf("%s /stats =\n%s\nwant\n%s", lang, got, want)
		}
	}
}
