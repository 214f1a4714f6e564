package telegram

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"wgbot"
	"wgbot/service"
	"wgbot/telegram/tgtest"
)

// payStars buys plan with Telegram Stars from the menu or a screen with a
// Buy button, and waits for the payment's confirmation.
func (h *harness) payStars(u tgtest.User, plan, charge string) {
	h.t.Helper()
	before := len(h.messages(u.ID))
	h.press(u, "buy")
	h.press(u, "buy:plan:"+plan)
	h.press(u, "buy:pay:stars:"+plan)
	inv := h.waitMessages(u.ID, before+1)[before].Invoice
	if inv == nil {
		h.t.Fatalf("no invoice:\n%s", dump(h.messages(u.ID)))
	}
	h.tg.SuccessfulPayment(u, "XTR", inv.Total(), inv.Payload, charge)
	h.wait("the payment's confirmation", func() bool {
		msgs := h.messages(u.ID)
		last := msgs[len(msgs)-1]
		return len(msgs) > before+1 && len(last.Keyboard) > 0 && last.Keyboard[0][0].CallbackData == "sub!"
	})
}

// lead is a catalogue text up to its first format verb.
func lead(lang string, key msg) string {
	s := text(lang, key)
	if i := strings.Index(s, "%"); i >= 0 {
		return s[:i]
	}
	return s
}

// buttons lists a message's callback data in order.
func buttons(m tgtest.Message) []string {
	var data []string
	for _, row := range m.Keyboard {
		for _, b := range row {
			data = append(data, b.CallbackData)
		}
	}
	return data
}

// TestMenuFollowsStanding (issue 17, item 1): /start greets by where the
// user stands. A new user is offered the trial; a user with live access
// (a trial, or paid) sees "My subscription" first and neither a Trial
// button nor words about the trial; once access ended, "Renew" comes
// first. The payment link for a live user says the days are added to the
// current expiry.
func TestMenuFollowsStanding(t *testing.T) {
	t.Parallel()
	card := &fakeCheckout{orders: make(chan wgbot.Order, 10)}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card}})
	for i, lang := range languages() {
		t.Run(lang, func(t *testing.T) {
			base := int64(17100 + 10*i)
			start := func(u tgtest.User) tgtest.Message {
				t.Helper()
				n := len(h.messages(u.ID))
				h.tg.SendText(u, "/start")
				return h.waitMessages(u.ID, n+1)[n]
			}
			trialWords := map[string]string{langEN: "trial", langRU: "пробн"}[lang]

			fresh := user(base+1, lang)
			if m := start(fresh); m.Text != text(lang, mWelcome, fresh.FirstName)+"\n\n"+text(lang, mMenu) || buttons(m)[0] != "trial" {
				t.Errorf("new user's /start:\n%s", dump([]tgtest.Message{m}))
			}

			payer := user(base+2, lang)
			start(payer)
			h.payStars(payer, "month", "stx-standing-"+lang)
			m := start(payer)
			greeting, _, _ := strings.Cut(text(lang, mWelcomeLive, payer.FirstName, "@"), "@")
			if !strings.HasPrefix(m.Text, greeting) ||
				strings.Contains(strings.ToLower(m.Text), trialWords) || buttons(m)[0] != "sub" || strings.Contains(strings.Join(buttons(m), " "), "trial") {
				t.Errorf("paying user's /start:\n%s", dump([]tgtest.Message{m}))
			}
			if !strings.Contains(m.Text, text(lang, mDateIn, "", text(lang, mDaysMany, 30))) {
				t.Errorf("paying user's /start does not say the expiry is in 30 days: %q", m.Text)
			}

			// The link for more days says they are added to the expiry.
			h.press(payer, "buy")
			h.press(payer, "buy:plan:quarter")
			n := len(h.messages(payer.ID))
			h.press(payer, "buy:pay:card:quarter")
			<-card.orders
			link := h.waitMessages(payer.ID, n+1)[n].Text
			if !strings.Contains(link, lead(lang, mPayExtends)) || strings.Contains(link, text(lang, mPayStarts)) {
				t.Errorf("payment link for an extension: %q", link)
			}
			h.press(payer, "buy")
			h.press(payer, "buy:plan:month")
			n = len(h.messages(payer.ID))
			h.press(payer, "buy:pay:stars:month")
			if inv := h.waitMessages(payer.ID, n+1)[n].Invoice; inv == nil || !strings.Contains(inv.Description, lead(lang, mPayExtends)) {
				t.Errorf("Stars invoice for an extension: %+v", inv)
			}

			trialist := user(base+3, lang)
			h.startTrial(trialist)
			if m := start(trialist); buttons(m)[0] != "sub" || strings.Contains(strings.Join(buttons(m), " "), "trial") {
				t.Errorf("live trial user's /start:\n%s", dump([]tgtest.Message{m}))
			}
			h.mustExec(`UPDATE subscriptions SET status = 'expired', expires_at = now() - interval '1 day'
				WHERE user_id = (SELECT id FROM users WHERE telegram_id = $1)`, trialist.ID)
			m = start(trialist)
			if m.Text != text(lang, mWelcomeEnded, trialist.FirstName)+"\n\n"+text(lang, mMenu) ||
				buttons(m)[0] != "buy" || m.Keyboard[0][0].Text != text(lang, mBtnRenew) {
				t.Errorf("expired user's /start:\n%s", dump([]tgtest.Message{m}))
			}
		})
	}
}

// TestPlanNamesAndDates (issue 17, item 3): plans are named by their
// titles in the user's language (by their days without one), never by
// their ids; a message states its date once, with how far off it is.
func TestPlanNamesAndDates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for i, lang := range languages() {
		u := user(int64(17501+i), lang)
		h.startTrial(u)
		steps := h.messages(u.ID)[3].Text
		if strings.Count(steps, " UTC") != 1 || !strings.Contains(steps, text(lang, mDateIn, "", text(lang, mDaysFew, 3))) {
			t.Errorf("%s: the trial's message states its date other than once, with the days left:\n%s", lang, steps)
		}
		h.press(u, "sub!")
		h.press(u, "buy")
		plans, _ := h.withButton(u.ID, "buy:plan:month")
		month := map[string]string{langEN: "Month", langRU: "Месяц"}[lang]
		if !strings.Contains(plans.Text, "• "+month+": ") || plans.Keyboard[0][0].Text != month+" · 150 ⭐" {
			t.Errorf("%s plans screen:\n%s", lang, dump([]tgtest.Message{plans}))
		}
		h.payStars(u, "month", "stx-titles-"+lang)
		h.press(u, "sub!")
		screen, _ := h.withButton(u.ID, "dev:add")
		if !strings.Contains(screen.Text, text(lang, mSubPlan, month)+"\n") || strings.Contains(screen.Text, "month\n") {
			t.Errorf("%s subscription screen:\n%s", lang, screen.Text)
		}
	}
	for _, tc := range []struct {
		lang string
		plan wgbot.Plan
		want string
	}{
		{langRU, wgbot.Plan{Days: 21}, "21 день"},
		{langEN, wgbot.Plan{Days: 1}, "1 day"},
		{langRU, wgbot.Plan{Days: 7, Titles: map[string]string{"en": "Week"}}, "Week"},
		{langRU, wgbot.Plan{Days: 7, Titles: map[string]string{"en": "Week", "ru": "Неделя"}}, "Неделя"},
	} {
		if got := h.bot.planTitle(tc.lang, tc.plan); got != tc.want {
			t.Errorf("planTitle(%s, %+v) = %q, want %q", tc.lang, tc.plan, got, tc.want)
		}
	}
	if got := h.bot.planText(langEN, "discontinued"); got != text(langEN, mPlanRetired) {
		t.Errorf("a plan no longer sold is named %q", got)
	}
}

// plainCheckout names itself only in the nominative (no TitleVia).
type plainCheckout struct{}

func (plainCheckout) Provider() string { return "plain" }
func (plainCheckout) Currency() string { return "RUB" }
func (plainCheckout) Title(lang string) string {
	if lang == langRU {
		return "Тестовая карта"
	}
	return "Test card"
}
func (plainCheckout) Start(_ context.Context, o wgbot.Order, _ wgbot.User) (string, error) {
	return "https://pay.example.com/plain/" + strconv.FormatInt(o.ID, 10), nil
}

// TestRussianGrammar (issue 17, item 4): a provider is named in the form
// its sentence needs (declined after "через", else after a colon in the
// nominative), and counts in admin replies take the plural form.
func TestRussianGrammar(t *testing.T) {
	t.Parallel()
	card := &fakeCheckout{orders: make(chan wgbot.Order, 10)}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card, plainCheckout{}}})
	u := user(17601, "ru")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	for _, tc := range []struct{ provider, want string }{
		{"card", text(langRU, mPayLink, "199.00 RUB", "банковскую карту")},
		{"plain", text(langRU, mPayLinkMethod, "199.00 RUB", "Тестовая карта")},
	} {
		h.press(u, "buy")
		h.press(u, "buy:plan:month")
		n := len(h.messages(u.ID))
		h.press(u, "buy:pay:"+tc.provider+":month")
		if got := h.waitMessages(u.ID, n+1)[n].Text; got != tc.want+"\n\n"+text(langRU, mPayStarts) {
			t.Errorf("%s link says %q", tc.provider, got)
		}
	}
	admin := user(adminID, "ru")
	for _, tc := range []struct {
		days int
		want string
	}{{1, "Начислено 1 день "}, {2, "Начислено 2 дня "}, {21, "Начислено 21 день "}, {11, "Начислено 11 дней "}} {
		n := len(h.messages(adminID))
		h.tg.SendText(admin, "/grant 17601 "+strconv.Itoa(tc.days))
		if got := h.waitMessages(adminID, n+1)[n].Text; !strings.HasPrefix(got, tc.want) {
			t.Errorf("/grant %d answered %q", tc.days, got)
		}
	}
}

// TestCancelledCheckout (issue 17, item 2): when the provider reports a
// checkout cancelled, the user is told once, with a button to try again
// that opens the plans; a paid order is never reported cancelled.
func TestCancelledCheckout(t *testing.T) {
	t.Parallel()
	card := &fakeCheckout{orders: make(chan wgbot.Order, 10)}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card}})
	for i, lang := range languages() {
		u := user(int64(17901+i), lang)
		h.tg.SendText(u, "/start")
		h.waitMessages(u.ID, 1)
		h.press(u, "buy")
		h.press(u, "buy:plan:month")
		h.press(u, "buy:pay:card:month")
		order := <-card.orders
		h.waitMessages(u.ID, 2)
		for range 2 { // the provider's notice, and its retry
			if err := h.svc.CancelOrder(h.ctx, order.ID); err != nil {
				t.Fatal(err)
			}
		}
		told := h.waitMessages(u.ID, 3)[2]
		if told.Text != text(lang, mCheckoutCanceled, "199.00 RUB") || buttons(told)[0] != "buy!" || told.Keyboard[0][0].Text != text(lang, mBtnTryAgain) {
			t.Errorf("%s: cancelled checkout told:\n%s", lang, dump([]tgtest.Message{told}))
		}
		h.press(u, "buy!")
		if plans := h.waitMessages(u.ID, 4)[3]; !strings.HasPrefix(plans.Text, lead(lang, mPlans)) {
			t.Errorf("%s: Try again opened %q", lang, plans.Text)
		}

		// A paid order stays paid, and nobody is told it was cancelled.
		h.press(u, "buy:plan:month")
		h.press(u, "buy:pay:card:month")
		paid := <-card.orders
		if _, err := h.svc.PayOrder(h.ctx, service.Payment{Provider: "card", ProviderPaymentID: "pay-cancel-" + lang, OrderID: paid.ID, Amount: paid.Amount, Currency: "RUB"}); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.CancelOrder(h.ctx, paid.ID); err != nil {
			t.Fatal(err)
		}
		h.waitDeliveryJobs()
		h.idle()
		for _, m := range h.messages(u.ID)[4:] {
			if m.Text == told.Text {
				t.Errorf("%s: told of a cancel twice, or of a paid order's", lang)
			}
		}
	}
}

// TestExpiredInvoice (issue 17, item 2): paying an invoice whose order has
// expired is refused before any Stars are taken, and the chat says so,
// with a button to try again.
func TestExpiredInvoice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for i, lang := range languages() {
		u := user(int64(17951+i), lang)
		h.tg.SendText(u, "/start")
		h.waitMessages(u.ID, 1)
		h.press(u, "buy")
		h.press(u, "buy:plan:month")
		h.press(u, "buy:pay:stars:month")
		inv := h.waitMessages(u.ID, 2)[1].Invoice
		h.mustExec(`UPDATE orders SET expires_at = now() - interval '1 second' WHERE user_id = (SELECT id FROM users WHERE telegram_id = $1)`, u.ID)
		id := h.tg.PreCheckout(u, "XTR", inv.Total(), inv.Payload)
		told := h.waitMessages(u.ID, 3)[2]
		if ans, _ := h.tg.PreCheckoutAnswer(id); ans.OK || ans.ErrorMessage != text(lang, mErrOrderClosed) {
			t.Errorf("%s: pre-checkout of an expired order answered %+v", lang, ans)
		}
		if told.Text != text(lang, mInvoiceClosed) || buttons(told)[0] != "buy!" {
			t.Errorf("%s: expired invoice told:\n%s", lang, dump([]tgtest.Message{told}))
		}
	}
}

// TestPaidInvoiceAgain: pressing Pay on a Stars invoice already paid is
// refused, and the chat says it is paid, in the language the user chose
// in the bot (not the app's): never "Payment cancelled … nothing was
// charged".
func TestPaidInvoiceAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for i, lang := range languages() {
		app := langEN
		if lang == langEN {
			app = langRU
		}
		u := user(int64(17961+i), app)
		h.tg.SendText(u, "/start")
		h.waitMessages(u.ID, 1)
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, u.ID)
		h.payStars(u, "month", "charge-again-"+lang)
		var inv *tgtest.Invoice
		for _, m := range h.messages(u.ID) {
			if m.Invoice != nil {
				inv = m.Invoice
			}
		}
		before := len(h.messages(u.ID))
		id := h.tg.PreCheckout(u, "XTR", inv.Total(), inv.Payload)
		told := h.waitMessages(u.ID, before+1)[before]
		if ans, _ := h.tg.PreCheckoutAnswer(id); ans.OK || ans.ErrorMessage != text(lang, mInvoicePaid) {
			t.Errorf("%s: pre-checkout of a paid order answered %+v", lang, ans)
		}
		if told.Text != text(lang, mInvoicePaid) {
			t.Errorf("%s: a paid invoice pressed again told:\n%s", lang, dump([]tgtest.Message{told}))
		}
	}
}

// TestWelcomeAfterTheEnd: /start after access ended promises the devices
// work again only when a renewal brings them back (wgbot.Renew: expired
// within the renewal grace). Past the grace, or after a revoke or ban,
// it says a new device comes instead.
func TestWelcomeAfterTheEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{renewalGrace: 7 * 24 * time.Hour})
	for i, lang := range languages() {
		base := int64(17170 + 10*i)
		cases := []struct {
			name string
			sql  string
			want msg
		}{
			{"expired yesterday", `UPDATE subscriptions SET status = 'expired', expires_at = now() - interval '1 day'`, mWelcomeEnded},
			{"expired past the grace", `UPDATE subscriptions SET status = 'expired', expires_at = now() - interval '10 days'`, mWelcomeEndedNew},
			{"revoked", `UPDATE subscriptions SET status = 'revoked'`, mWelcomeEndedNew},
		}
		for j, c := range cases {
			u := user(base+int64(j), lang)
			h.startTrial(u)
			h.mustExec(c.sql+` WHERE user_id = (SELECT id FROM users WHERE telegram_id = $1)`, u.ID)
			n := len(h.messages(u.ID))
			h.tg.SendText(u, "/start")
			if m := h.waitMessages(u.ID, n+1)[n]; m.Text != text(lang, c.want, u.FirstName)+"\n\n"+text(lang, mMenu) {
				t.Errorf("%s, %s: /start says:\n%s", lang, c.name, dump([]tgtest.Message{m}))
			}
		}
	}
}

// TestDatesOnTheServiceClock: "in N days" counts from the service's clock,
// the one expiries are computed on, not the bot's own: with the service
// two days ahead, a 3-day trial still says "in 3 days", and an extension
// names the date the service would set.
func TestDatesOnTheServiceClock(t *testing.T) {
	t.Parallel()
	ahead := func() time.Time { return time.Now().Add(48 * time.Hour) }
	h := newHarness(t, harnessOptions{clock: ahead})
	u := user(17971, "en")
	h.startTrial(u)
	var expires time.Time
	h.queryRow(`SELECT s.expires_at FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE u.telegram_id = $1`, []any{u.ID}, &expires)
	want := text(langEN, mTrialIssued, text(langEN, mDateIn, formatDate(expires), "3 days"))
	if !slices.ContainsFunc(h.messages(u.ID), func(m tgtest.Message) bool { return strings.HasPrefix(m.Text, want) }) {
		t.Errorf("no %q in:\n%s", want, dump(h.messages(u.ID)))
	}
}
