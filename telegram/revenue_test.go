package telegram

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"wgbot"
	"wgbot/telegram/tgtest"
)

// TestPromoRefusedInBothLanguages: an expired, a disabled and an unknown
// code are each refused with their own sentence in the user's language,
// by /promo and as a plain message, and nothing is redeemed.
func TestPromoRefusedInBothLanguages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if _, err := h.svc.CreatePromo(h.ctx, wgbot.Promo{Code: "OLD", Kind: wgbot.PromoDays, Value: 3, Expires: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	admin := user(adminID, "en")
	for i, cmd := range []string{"/promoadd GONE days=3 uses=5", "/promooff gone"} {
		h.tg.SendText(admin, cmd)
		h.waitMessages(adminID, i+1)
	}
	if got := h.messages(adminID)[1].Text; got != text(langEN, mAdminPromoDisabled, "GONE") {
		t.Fatalf("/promooff answered %q", got)
	}
	for _, tc := range []struct {
		u    tgtest.User
		lang string
	}{{user(6101, "en"), langEN}, {user(6102, "ru"), langRU}} {
		h.tg.SendText(tc.u, "/start")
		h.waitMessages(tc.u.ID, 1)
		n := 1
		for _, step := range []struct {
			send string
			want msg
		}{
			{"/promo old", mErrPromoExpired},
			{"OLD", mErrPromoExpired},
			{"/promo GONE", mErrPromoDisabled},
			{"gone", mErrPromoDisabled},
			{"/promo NOSUCH", mErrPromoNotFound},
		} {
			h.tg.SendText(tc.u, step.send)
			n++
			if got := h.waitMessages(tc.u.ID, n)[n-1].Text; got != text(tc.lang, step.want) {
				t.Errorf("%s %q answered %q, want %q", tc.lang, step.send, got, text(tc.lang, step.want))
			}
		}
		if text(tc.lang, mErrPromoExpired) == text(langEN, mErrPromoExpired) && tc.lang == langRU {
			t.Error("the Russian refusal is the English one")
		}
	}
	h.tg.SendText(admin, "/promos")
	list := h.waitMessages(adminID, 3)[2].Text
	if !strings.Contains(list, "• GONE: "+text(langEN, mDaysMany, 3)+"; used: 0/5; per user: 1; "+text(langEN, mPromoOff)) ||
		!strings.Contains(list, "• OLD: ") || !strings.Contains(list, text(langEN, mPromoExpired)) {
		t.Errorf("/promos = %q", list)
	}
	var redemptions int
	h.queryRow(`SELECT count(*) FROM promo_redemptions`, nil, &redemptions)
	if redemptions != 0 {
		t.Fatalf("refused codes made %d redemptions", redemptions)
	}
}

// TestDiscountAndReferralInTheChat: a friend who came by a link enters a
// discount code through the Promo code button, is invoiced the
// discounted Stars price, pays it, and both sides are told of their
// referral bonus; the referrer's screen counts the friend and the days.
func TestDiscountAndReferralInTheChat(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{referral: wgbot.ReferralBonus{ReferrerDays: 7, InvitedDays: 2}})
	admin, ann, boris := user(adminID, "en"), user(6201, "en"), user(6202, "ru")
	h.tg.SendText(admin, "/promoadd HALF percent=50 plans=month")
	if got := h.waitMessages(adminID, 1)[0].Text; !strings.HasPrefix(got, strings.Split(text(langEN, mAdminPromoAdded, ""), "\n")[0]) {
		t.Fatalf("/promoadd answered %q", got)
	}
	h.tg.SendText(ann, "/start")
	h.waitMessages(ann.ID, 1)
	h.tg.SendText(ann, "/invite")
	link := regexp.MustCompile(`start=ref_([a-z0-9]+)`).FindStringSubmatch(h.waitMessages(ann.ID, 2)[1].Text)
	if link == nil {
		t.Fatalf("no link on the invite screen: %q", h.messages(ann.ID)[1].Text)
	}
	h.tg.SendText(boris, "/start ref_"+link[1])
	h.waitMessages(boris.ID, 1)
	h.press(boris, "promo")
	if got := h.messages(boris.ID)[0].Text; got != text(langRU, mPromoAsk) {
		t.Fatalf("the Promo code button showed %q", got)
	}
	h.tg.SendText(boris, "half")
	if got := h.waitMessages(boris.ID, 2)[1].Text; !strings.HasPrefix(got, text(langRU, mPromoDiscount, "HALF", "50%")) {
		t.Fatalf("discount accepted as %q", got)
	}
	before := len(h.messages(boris.ID))
	h.payStars(boris, "month", "stx-half")
	var inv *tgtest.Invoice
	for _, m := range h.messages(boris.ID)[before:] {
		if m.Invoice != nil {
			inv = m.Invoice
		}
	}
	if inv == nil || inv.Total() != 75 {
		t.Fatalf("invoice %+v, want the month's 150 Stars at 50%% off: 75", inv)
	}
	h.wait("the friend told of their bonus", func() bool {
		for _, m := range h.messages(boris.ID) {
			if strings.HasPrefix(m.Text, strings.Split(text(langRU, mBonusInvited, "2 дня", ""), " до ")[0]) {
				return true
			}
		}
		return false
	})
	// Ann had no access: the bonus is 7 days with a device, whose config
	// comes with the words of the bonus.
	h.wait("the referrer's device with the bonus's words", func() bool {
		for _, m := range h.messages(ann.ID) {
			if strings.HasPrefix(m.Text, strings.Split(text(langEN, mBonusReferrer, "7 days", ""), " until ")[0]) ||
				strings.HasPrefix(m.Caption, strings.Split(text(langEN, mBonusReferrer, "7 days", ""), " until ")[0]) {
				return true
			}
		}
		return false
	})
	h.tg.SendText(ann, "/invite")
	n := len(h.messages(ann.ID)) + 1
	if got := h.waitMessages(ann.ID, n)[n-1].Text; !strings.Contains(got, text(langEN, mInviteStats, "1 friend", 1, "7 days")) ||
		!strings.Contains(got, text(langEN, mInviteBoth, "7 days", "2 days")) {
		t.Fatalf("invite screen after the friend paid: %q", got)
	}
	h.tg.SendText(admin, "/stats")
	if got := h.waitMessages(adminID, 2)[1].Text; !strings.Contains(got, "by provider:\n• stars: 75 ⭐\n"+text(langEN, mStatsRevenueExtra, "• stars: 75 ⭐", 1, 2, 1)) {
		t.Fatalf("/stats = %q", got)
	}
}
