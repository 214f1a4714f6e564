package telegram

import (
	"slices"
	"strings"
	"testing"
	"time"

	"wgbot"
	"wgbot/postgres"
)

// A quota's life in the chat: the buy screen lists plans, not top-ups;
// past 80% the user is told once, with a button for the top-up and one for
// the plans; past 100% told again; the top-up's button opens its ways to
// pay, its Stars invoice sells traffic (not days), and its payment is
// confirmed as traffic. /stats lists the subscription over quota.
func TestQuotaNoticesAndTopUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{plans: []wgbot.Plan{
		{Name: "capped", Days: 30, Devices: 1, TrafficGB: 0.005, Prices: map[string]int64{"XTR": 100}},
		{Name: "plus5", Kind: wgbot.PlanTopUp, TopUpGB: 0.005, Prices: map[string]int64{"XTR": 20}},
	}})
	u := user(19301, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.press(u, "buy")
	if m, _ := h.withButton(u.ID, "buy:plan:capped"); slices.Contains(buttons(m), "buy:plan:plus5") {
		t.Fatalf("the buy screen lists the top-up: %v", buttons(m))
	}
	h.press(u, "menu")
	h.payStars(u, "capped", "stx-capped")
	var server int64
	var key string
	h.queryRow(`SELECT server_id, public_key FROM peers`, nil, &server, &key)
	push := func(n int64) {
		t.Helper()
		if err := h.store.RecordUsage(h.ctx, server, time.Now(), []postgres.PeerSample{{PublicKey: key, Received: n}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.EnforceQuotas(h.ctx); err != nil {
			t.Fatal(err)
		}
	}
	noticeWith := func(what string, count int) {
		t.Helper()
		h.eventually(what, func() bool {
			n := 0
			for _, m := range h.messages(u.ID) {
				if strings.Contains(m.Text, what) {
					n++
				}
			}
			return n == count
		})
	}

	push(4_200_000)
	warn := text(langEN, mQuotaWarn, "4.2 MB", "5 MB", "")
	warn = warn[:strings.Index(warn, "At the limit")]
	noticeWith(warn, 1)
	m, ok := h.withButton(u.ID, "buy:plan:plus5")
	if !ok || !slices.Equal(buttons(m), []string{"buy:plan:plus5", "buy!"}) || !strings.Contains(m.Keyboard[0][0].Text, "+5 MB") {
		t.Fatalf("the 80%% notice's buttons: %v\n%s", buttons(m), dump(h.messages(u.ID)))
	}
	push(5_300_000)
	noticeWith(lead(langEN, mQuotaFull), 1)
	push(5_400_000) // another check: nothing more
	h.idle()
	noticeWith(warn, 1)
	noticeWith(lead(langEN, mQuotaFull), 1)

	n := len(h.messages(adminID))
	h.tg.SendText(user(adminID, "en"), "/stats")
	h.waitMessages(adminID, n+1)
	if stats := h.messages(adminID)[n].Text; !strings.Contains(stats, text(langEN, mStatsOverQuotaLine, "19301 @user19301", "5.4 MB", "5 MB")) {
		t.Errorf("/stats lacks the subscription over quota:\n%s", stats)
	}

	before := len(h.messages(u.ID))
	h.press(u, "buy:plan:plus5")
	if m, _ := h.withButton(u.ID, "buy:pay:stars:plus5"); !strings.Contains(m.Text, text(langEN, mChooseTopUp, "5 MB")) || len(buttons(m)) != 2 {
		t.Fatalf("the top-up's ways to pay: %q %v", m.Text, buttons(m))
	}
	h.press(u, "buy:pay:stars:plus5")
	inv := h.waitMessages(u.ID, before+1)[before].Invoice
	if inv == nil || inv.Title != text(langEN, mTopUpInvoiceTitle, "5 MB") || inv.Description != text(langEN, mTopUpInvoiceDescription, "5 MB") || inv.Total() != 20 {
		t.Fatalf("the top-up's invoice: %+v", inv)
	}
	h.tg.SuccessfulPayment(u, "XTR", inv.Total(), inv.Payload, "stx-plus5")
	noticeWith(text(langEN, mTopUpCredited, "5 MB"), 1)
	var status string
	h.queryRow(`SELECT status FROM peers`, nil, &status)
	if status != wgbot.PeerActive {
		t.Fatalf("the device after the top-up is %s", status)
	}
}
