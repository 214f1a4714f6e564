package telegram

import (
	"strings"
	"testing"
	"time"

	"wgbot/postgres"
	"wgbot/telegram/tgtest"
)

// "My subscription" shows under each device when it last connected and
// its traffic this month, in the user's language; a device collected but
// never connected says so; one no collection has seen shows neither.
// /stats lists the month's top consumers.
func TestSubscriptionShowsTraffic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	alice, boris, carol := user(19101, "en"), user(19102, "ru"), user(19103, "en")
	for _, u := range []tgtest.User{alice, boris, carol} {
		h.startTrial(u)
	}
	ap, bp := h.peerOf(alice.ID, "device-1"), h.peerOf(boris.ID, "device-1")
	var server int64
	var aKey, bKey string
	h.queryRow(`SELECT server_id, public_key FROM peers WHERE id = $1`, []any{ap}, &server, &aKey)
	h.queryRow(`SELECT public_key FROM peers WHERE id = $1`, []any{bp}, &bKey)
	if err := h.store.RecordUsage(h.ctx, server, time.Now(), []postgres.PeerSample{
		{PublicKey: aKey, Received: 1 << 20, Transmitted: 1 << 19, LastHandshake: time.Now().Add(-5*time.Minute - 10*time.Second)},
		{PublicKey: bKey},
	}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		u         tgtest.User
		want, not string
	}{
		{alice, "   last connected 5 minutes ago · 1.5 MB this month", "not connected yet"},
		{boris, text(langRU, mDeviceNever), "подключалось "},
		{carol, "", "connected"},
	} {
		before := len(h.messages(tc.u.ID))
		h.press(tc.u, "sub")
		var screen string
		h.wait("the subscription screen", func() bool {
			for _, m := range h.messages(tc.u.ID) {
				if strings.Contains(m.Text, text(normalizeLang(tc.u.LanguageCode), mSubStatus, "")) {
					screen = m.Text
				}
			}
			return screen != "" && len(h.messages(tc.u.ID)) >= before
		})
		if !strings.Contains(screen, tc.want) || strings.Contains(screen, tc.not) {
			t.Errorf("user %d's subscription screen, want %q and not %q:\n%s", tc.u.ID, tc.want, tc.not, screen)
		}
	}

	n := len(h.messages(adminID))
	h.tg.SendText(user(adminID, "en"), "/stats")
	h.waitMessages(adminID, n+1)
	stats := h.messages(adminID)[n].Text
	if !strings.Contains(stats, text(langEN, mStatsTop, "• 19101 @user19101: 1.5 MB")) {
		t.Errorf("/stats lacks the top consumer:\n%s", stats)
	}
}

// The catalogue's traffic words: relative times in both languages' plural
// forms, and amounts in the largest fitting unit.
func TestTrafficWords(t *testing.T) {
	tx := texts(catalogue())
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		lang string
		ago  time.Duration
		want string
	}{
		{langEN, 20 * time.Second, "just now"},
		{langEN, time.Minute, "1 minute ago"},
		{langEN, 59 * time.Minute, "59 minutes ago"},
		{langRU, 21 * time.Minute, "21 минуту назад"},
		{langRU, 3 * time.Hour, "3 часа назад"},
		{langRU, 11 * time.Hour, "11 часов назад"},
		{langEN, 25 * time.Hour, "1 day ago"},
		{langRU, 5 * 24 * time.Hour, "5 дней назад"},
	} {
		if got := tx.ago(tc.lang, now.Add(-tc.ago), now); got != tc.want {
			t.Errorf("%s ago in %s: %q, want %q", tc.ago, tc.lang, got, tc.want)
		}
	}
	for _, tc := range []struct {
		lang string
		n    int64
		want string
	}{
		{langEN, 0, "0 B"},
		{langEN, 1023, "1023 B"},
		{langEN, 1536, "1.5 KB"},
		{langRU, 1536, "1,5 КБ"},
		{langEN, 25 << 20, "25 MB"},
		{langRU, 3 << 30, "3,0 ГБ"},
		{langEN, 2048 << 30, "2.0 TB"},
	} {
		if got := tx.bytes(tc.lang, tc.n); got != tc.want {
			t.Errorf("%d bytes in %s: %q, want %q", tc.n, tc.lang, got, tc.want)
		}
	}
}
