package telegram

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"wgbot"
	"wgbot/service"
	"wgbot/telegram/tgtest"
)

// TestRenewalFailedTexts: each way a saved card's renewal fails is told
// in its own words, in ru and en, with a button to pay by hand; only the
// outcomes that took nothing say so, and none reuses the cancelled
// checkout's "nothing was charged".
func TestRenewalFailedTexts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	until := time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)
	order := wgbot.Order{Amount: 19900, Currency: "RUB", Status: wgbot.OrderCanceled}
	for i, lang := range languages() {
		u := user(int64(6601+i), lang)
		h.tg.SendText(u, "/start")
		h.waitMessages(u.ID, 1)
		reg, err := h.svc.UserByTelegramID(h.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for j, tc := range []struct {
			outcome wgbot.RenewalFailure
			want    msg
		}{
			{wgbot.RenewalDeclined, mRenewDeclined},
			{wgbot.RenewalCardGone, mRenewCardGone},
			{wgbot.RenewalReleased, mRenewReleased},
			{wgbot.RenewalUnconfirmed, mRenewUnconfirmed},
		} {
			if err := h.bot.RenewalFailed(h.ctx, reg, order, tc.outcome, until); err != nil {
				t.Fatal(err)
			}
			got := h.waitMessages(u.ID, j+2)[j+1]
			want := text(lang, tc.want, "199.00 RUB", "2027-01-15 00:00 UTC")
			if got.Text != want || len(got.Keyboard) != 1 || got.Keyboard[0][0].CallbackData != "buy!" ||
				got.Keyboard[0][0].Text != text(lang, mBtnPayByHand) {
				t.Errorf("%s %s: told\n%s\nwant %q", lang, tc.outcome, dump([]tgtest.Message{got}), want)
			}
			if seen[got.Text] || got.Text == text(lang, mCheckoutCanceled, "199.00 RUB") {
				t.Errorf("%s %s: words shared with another notice: %q", lang, tc.outcome, got.Text)
			}
			seen[got.Text] = true
		}
	}
	if text(langEN, mRenewUnconfirmed, "", "") == text(langRU, mRenewUnconfirmed, "", "") {
		t.Error("the Russian text is the English one")
	}
	// Only an undecided charge may still take money; it never says none
	// was taken.
	if strings.Contains(text(langEN, mRenewUnconfirmed, "", ""), "nothing was") || !strings.Contains(text(langEN, mRenewDeclined, "", ""), "nothing was charged") {
		t.Error("the texts misstate whether money moved")
	}
}

// TestBonusTakenBackTold: a refund of a friend's first payment takes the
// referrer's bonus back and tells them so, once, in their language: with
// the new expiry when time is left, with the way to buy when it took the
// rest of their access.
func TestBonusTakenBackTold(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{referral: wgbot.ReferralBonus{ReferrerDays: 7}})
	code := regexp.MustCompile(`start=ref_([a-z0-9]+)`)
	for i, tc := range []struct {
		lang  string
		trial bool // else the bonus is all the referrer has
		want  msg
	}{{langRU, true, mBonusTakenBack}, {langEN, false, mBonusTakenBackEnd}} {
		referrer, friend := user(int64(6701+2*i), tc.lang), user(int64(6702+2*i), "en")
		h.tg.SendText(referrer, "/start")
		h.waitMessages(referrer.ID, 1)
		if tc.trial {
			h.press(referrer, "trial")
		}
		h.tg.SendText(referrer, "/invite")
		var link []string
		h.wait("the invite link", func() bool {
			for _, m := range h.messages(referrer.ID) {
				if link = code.FindStringSubmatch(m.Text); link != nil {
					return true
				}
			}
			return false
		})
		h.tg.SendText(friend, "/start ref_"+link[1])
		h.waitMessages(friend.ID, 1)
		f, err := h.svc.UserByTelegramID(h.ctx, friend.ID)
		if err != nil || f.ReferrerID == 0 {
			t.Fatalf("friend %+v: %v", f, err)
		}
		order, err := h.svc.CreateOrder(h.ctx, f, "month", "stars", "XTR")
		if err != nil {
			t.Fatal(err)
		}
		charge := "stx-bonus-back-" + tc.lang
		if _, err := h.svc.PayOrder(h.ctx, service.Payment{Provider: "stars", ProviderPaymentID: charge, OrderID: order.ID, Amount: order.Amount, Currency: "XTR"}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a repeated refund tells nobody again
			if _, err := h.svc.Refund(h.ctx, "stars", charge); err != nil {
				t.Fatal(err)
			}
		}
		head := strings.SplitN(text(tc.lang, tc.want, b7days(tc.lang), ""), ".", 2)[0]
		var told []tgtest.Message
		h.eventually("the referrer told", func() bool {
			told = nil
			for _, m := range h.messages(referrer.ID) {
				if strings.HasPrefix(m.Text, head) {
					told = append(told, m)
				}
			}
			return len(told) > 0
		})
		time.Sleep(500 * time.Millisecond) // room for a second notice, if one were coming
		told = told[:0]
		for _, m := range h.messages(referrer.ID) {
			if strings.HasPrefix(m.Text, head) {
				told = append(told, m)
			}
		}
		if len(told) != 1 {
			t.Fatalf("%s: told %d times:\n%s", tc.lang, len(told), dump(h.messages(referrer.ID)))
		}
		if !tc.trial && (len(told[0].Keyboard) == 0 || told[0].Keyboard[0][0].CallbackData != "buy!") {
			t.Errorf("%s: access ended, yet no way to buy:\n%s", tc.lang, dump(told))
		}
		if tc.trial {
			r, err := h.svc.UserByTelegramID(h.ctx, referrer.ID)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := h.svc.Subscription(h.ctx, r)
			if err != nil || !strings.Contains(told[0].Text, formatDate(sub.ExpiresAt)) {
				t.Errorf("%s: told %q, want the trial's end %s (%v)", tc.lang, told[0].Text, formatDate(sub.ExpiresAt), err)
			}
		}
	}
}

func b7days(lang string) string {
	if lang == langRU {
		return "7 дней"
	}
	return "7 days"
}
