package telegram

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/telegram/tgtest"
)

// TestBroadcast: 200 users, 10 of whom block the bot while the broadcast
// runs and one of whom hits a 429. Everyone else gets the text exactly
// once, the 10 get at most one refused send each and are marked blocked,
// the admin's report counts them right, and the
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
		if _, err := h.svc.Register(h.ctx, wgbot.User{TelegramID: u.ID, FirstName: u.FirstName, Language: "en"}, ""); err != nil {
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
	h.waitMessages(adminID, 2)
	preview, _ := h.withButton(adminID, "bc:aud:all")
	h.press(admin, "bc:aud:all")
	h.press(admin, "bc:send:all")
	before := len(h.tg.Requests()) // the preview's own sends are not the broadcast's
	queued := h.waitMessages(adminID, 3)[2]
	if queued.Text != text(langEN, mAdminBroadcastQueue, text(langEN, mAudienceAll), n+1) { // the admin is a user too
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
			if m.Text == body && m.ID != preview.ID {
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
	for _, r := range h.tg.Requests()[before:] {
		if r.Method != "sendMessage" {
			continue
		}
		sends = append(sends, r)
		perChat[r.ChatID] = append(perChat[r.ChatID], r)
	}
	// A user whose block the bot has already heard of (my_chat_member) is
	// skipped; one it has not is refused once and not retried.
	for _, id := range blocked {
		if rs := perChat[id]; len(rs) > 1 || len(rs) == 1 && rs[0].StatusCode != http.StatusForbidden {
			t.Errorf("blocked user %d: %d sends (%+v), want at most one, refused, and no retry", id, len(rs), rs)
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
	if len(perChat[adminID]) != 2 {
		t.Errorf("the admin's chat got %d sends after Send, want the copy and the report", len(perChat[adminID]))
	}
}

// TestBroadcastPreview (issue 17, item 10): /broadcast shows the text as
// users get it and each audience's size, sends nothing before Send, and
// then only to the audience chosen; Cancel sends nothing.
func TestBroadcastPreview(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	live, idle := user(17801, "en"), user(17802, "ru")
	h.startTrial(live)
	h.tg.SendText(idle, "/start")
	h.waitMessages(idle.ID, 1)
	admin := user(adminID, "en")
	for i, lang := range languages() {
		h.tg.SendText(admin, "/start") // registered, never paid
		h.waitMessages(adminID, 5*i+1)
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, adminID)
		body := "Scheduled maintenance " + lang
		h.tg.SendText(admin, "/broadcast "+body)
		msgs := h.waitMessages(adminID, 5*i+3)
		intro, preview := msgs[5*i+1], msgs[5*i+2]
		var labels []string
		for _, row := range preview.Keyboard {
			labels = append(labels, row[0].Text)
		}
		want := []string{text(lang, mAudienceButton, text(lang, mAudienceAll), 3), text(lang, mAudienceButton, text(lang, mAudienceActive), 1),
			text(lang, mAudienceButton, text(lang, mAudienceExpired), 0), text(lang, mAudienceButton, text(lang, mAudienceNeverPaid), 3), text(lang, mBtnCancel)}
		if intro.Text != text(lang, mBroadcastPreview) || preview.Text != body || !slices.Equal(labels, want) {
			t.Fatalf("%s preview:\n%s\nbuttons %q, want %q", lang, dump(msgs[5*i+1:]), labels, want)
		}
		h.press(admin, "bc:aud:active")
		if got := h.message(adminID, preview.ID); got.Text != body || got.Keyboard[0][0].Text != text(lang, mBtnSendBroadcast, text(lang, mAudienceActive), 1) {
			t.Errorf("%s after choosing the audience:\n%s", lang, dump([]tgtest.Message{got}))
		}
		h.idle()
		var queued int
		h.queryRow(`SELECT count(*) FROM broadcasts`, nil, &queued)
		if queued != i {
			t.Fatalf("%s: %d broadcasts before Send, want %d", lang, queued, i)
		}
		h.press(admin, "bc:send:active")
		if got := h.waitMessages(adminID, 5*i+4)[5*i+3].Text; got != text(lang, mAdminBroadcastQueue, text(lang, mAudienceActive), 1) {
			t.Errorf("%s: Send answered %q", lang, got)
		}
		report := text(lang, mAdminBroadcastDone, 1, 0, 0)
		h.wait("the report", func() bool { return len(h.messages(adminID)) > 5*i+4 && h.messages(adminID)[5*i+4].Text == report })
		h.wait("the live user's copy", func() bool { msgs := h.messages(live.ID); return msgs[len(msgs)-1].Text == body })
		if got := h.messages(idle.ID); got[len(got)-1].Text == body {
			t.Errorf("%s: a user without a live subscription got the broadcast to the live ones", lang)
		}
		if len(h.message(adminID, preview.ID).Keyboard) != 0 {
			t.Errorf("%s: Send is still there after sending", lang)
		}
	}
	// Cancel sends nothing.
	h.tg.SendText(admin, "/broadcast never")
	h.waitMessages(adminID, 12)
	h.press(admin, "adm:no")
	h.idle()
	var queued int
	h.queryRow(`SELECT count(*) FROM broadcasts`, nil, &queued)
	if queued != 2 {
		t.Errorf("%d broadcasts after a cancelled one, want 2", queued)
	}
}

// TestBroadcastSendTwice: Send of one preview tapped on several processes
// at once (two taps on two webhook processes: each has its own gate)
// queues the broadcast once, tells the admin once, and each user gets
// the text once.
func TestBroadcastSendTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	live := user(17811, "en")
	h.startTrial(live)
	admin := user(adminID, "en")
	h.tg.SendText(admin, "/broadcast Twice?")
	h.waitMessages(adminID, 2)
	preview, _ := h.withButton(adminID, "bc:aud:all")
	h.press(admin, "bc:aud:all")
	before := len(h.messages(adminID))
	var wg sync.WaitGroup
	for i := range 4 {
		b, err := New(h.svc, h.bot.cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		raw := fmt.Sprintf(`{"update_id":%d,"callback_query":{"id":"tap%d","chat_instance":"1","data":"bc:send:all",
			"from":{"id":%d,"is_bot":false,"first_name":"A","language_code":"en"},
			"message":{"message_id":%d,"date":1,"chat":{"id":%d,"type":"private"},"text":"Twice?"}}}`,
			876500+i, i, adminID, preview.ID, adminID)
		wg.Go(func() {
			var upd models.Update
			if err := json.Unmarshal([]byte(raw), &upd); err != nil {
				t.Error(err)
				return
			}
			b.handleUpdate(h.ctx, &upd)
		})
	}
	wg.Wait()
	h.wait("the report", func() bool {
		return slices.ContainsFunc(h.messages(adminID), func(m tgtest.Message) bool { return m.Text == text(langEN, mAdminBroadcastDone, 2, 0, 0) })
	})
	h.idle()
	var queued int
	h.queryRow(`SELECT count(*) FROM broadcasts`, nil, &queued)
	if queued != 1 {
		t.Errorf("%d broadcasts after four Sends of one preview, want 1", queued)
	}
	told := 0
	for _, m := range h.messages(adminID)[before:] {
		if m.Text == text(langEN, mAdminBroadcastQueue, text(langEN, mAudienceAll), 2) {
			told++
		}
	}
	if told != 1 {
		t.Errorf("the admin was told %d times the broadcast is queued, want once:\n%s", told, dump(h.messages(adminID)))
	}
	got := 0
	for _, m := range h.messages(live.ID) {
		if m.Text == "Twice?" {
			got++
		}
	}
	if got != 1 {
		t.Errorf("the user got the broadcast %d times, want 1", got)
	}
}
