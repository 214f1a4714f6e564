package telegram

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"wgbot"
	"wgbot/telegram/tgtest"
)

// TestBroadcast: 200 users, 10 of whom block the bot while the broadcast
// runs and one of whom hits a 429. Everyone else gets the text exactly
// once, the 10 get one refused send each and are marked blocked, and the
// emulator's clock shows the rate limits held: at most about 25 sends in
// any second overall, and at most one per chat per second. Not parallel:
// other tests' load would blur the timing it measures.
func TestBroadcast(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	const n = 200
	var users []int64
	for i := range n {
		u := user(int64(10000+i), "en")
		h.tg.AddUser(u)
		if _, err := h.svc.Register(h.ctx, wgbot.User{TelegramID: u.ID, FirstName: u.FirstName, Language: "en"}, 0); err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
	}
	blocked := users[n-10:] // Reachable sends in id order: these come last
	throttled := users[5]
	h.tg.FailNext("sendMessage", throttled, http.StatusTooManyRequests, 1)

	const body = "Maintenance tonight at 02:00 UTC.\nThe VPN may pause for a minute."
	admin := user(adminID, "en")
	h.tg.SendText(admin, "/broadcast "+body)
	queued := h.waitMessages(adminID, 1)[0]
	if queued.Text != text(langEN, mAdminBroadcastQueue, n+1) { // the admin is a user too
		t.Fatalf("admin was told %q", queued.Text)
	}
	for _, id := range blocked {
		h.tg.Block(id)
	}
	report := text(langEN, mAdminBroadcastDone, n+1-10, 10, 0)
	h.wait("the broadcast report", func() bool {
		msgs := h.messages(adminID)
		return slices.ContainsFunc(msgs, func(m tgtest.Message) bool { return m.Text == report })
	})

	for _, id := range append(slices.Clone(users), adminID) {
		got := 0
		for _, m := range h.messages(id) {
			if m.Text == body {
				got++
			}
		}
		want := 1
		if slices.Contains(blocked, id) {
			want = 0
		}
		if got != want {
			t.Errorf("chat %d got the broadcast %d times, want %d", id, got, want)
		}
	}
	for _, id := range blocked {
		var isBlocked bool
		h.queryRow(`SELECT blocked_bot FROM users WHERE telegram_id = $1`, []any{id}, &isBlocked)
		if !isBlocked {
			t.Errorf("user %d blocked the bot but is not marked", id)
		}
	}

	var sends []tgtest.Request
	perChat := map[int64][]tgtest.Request{}
	for _, r := range h.tg.Requests() {
		if r.Method != "sendMessage" {
			continue
		}
		sends = append(sends, r)
		perChat[r.ChatID] = append(perChat[r.ChatID], r)
	}
	for _, id := range blocked {
		if rs := perChat[id]; len(rs) != 1 || rs[0].StatusCode != http.StatusForbidden {
			t.Errorf("blocked user %d: %d sends (%+v), want one refused and no retry", id, len(rs), rs)
		}
	}
	if rs := perChat[throttled]; len(rs) != 2 || rs[0].StatusCode != http.StatusTooManyRequests || rs[1].At.Sub(rs[0].At) < time.Second {
		t.Errorf("throttled user: %+v, want a retry after retry_after", rs)
	}
	// Any one-second window holds at most 25 sends, plus one for the
	// jitter between the bot's clock and the emulator's request log.
	maxWindow := 0
	for i := range sends {
		j := i
		for j < len(sends) && sends[j].At.Sub(sends[i].At) < time.Second {
			j++
		}
		maxWindow = max(maxWindow, j-i)
	}
	t.Logf("%d sends in %v, at most %d in one second", len(sends), sends[len(sends)-1].At.Sub(sends[0].At).Round(time.Millisecond), maxWindow)
	if maxWindow > 26 {
		t.Errorf("%d sends within one second, want about 25", maxWindow)
	}
	// Per chat, including the admin's, which also gets the "queued" reply
	// and the report around its own copy.
	for id, rs := range perChat {
		for i := 1; i < len(rs); i++ {
			if gap := rs[i].At.Sub(rs[i-1].At); gap < time.Second {
				t.Errorf("chat %d got two sends %v apart", id, gap)
			}
		}
	}
	if len(perChat[adminID]) != 3 {
		t.Errorf("the admin's chat got %d sends, want queued, the copy and the report", len(perChat[adminID]))
	}
}
