package telegram

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"
)

// TestDedupeAcrossRestart: an update handled before a restart is not
// handled again when Telegram redelivers it to the new process.
func TestDedupeAcrossRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(7001, "en")
	first := h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.idle()
	h.shutdown()

	// The next process: a new Bot on the same database.
	var err error
	h.bot, err = New(h.svc, h.bot.cfg, nil, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	if err := h.tg.Redeliver(first); err != nil {
		t.Fatal(err)
	}
	h.tg.SendText(u, "/help")
	h.waitMessages(u.ID, 2)
	h.idle()
	if msgs := h.messages(u.ID); len(msgs) != 2 || msgs[1].Text != text(langEN, mHelp, "3 days", "@wgbot_support") {
		t.Errorf("after a restart and a redelivery the bot sent:\n%s", dump(msgs))
	}
}

// TestDedupeAcrossProcesses: several bots on one database handed the same
// update at once (a webhook retry landing on another process) act once.
func TestDedupeAcrossProcesses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(7101, "en")
	h.tg.AddUser(u)
	var bots []*Bot
	for range 4 {
		b, err := New(h.svc, h.bot.cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		bots = append(bots, b)
	}
	raw := `{"update_id":987654,"message":{"message_id":1,"date":1,"chat":{"id":7101,"type":"private"},"from":{"id":7101,"is_bot":false,"first_name":"U","language_code":"en"},"text":"/start","entities":[{"type":"bot_command","offset":0,"length":6}]}}`
	var wg sync.WaitGroup
	for _, b := range bots {
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
	if n := len(h.messages(u.ID)); n != 1 {
		t.Errorf("4 processes sent %d replies to one update", n)
	}
}

// TestPruneSeenUpdates: old update ids are forgotten, recent ones kept.
func TestPruneSeenUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for _, id := range []int64{1, 2, 3} {
		if first, err := h.svc.ClaimTelegramUpdate(h.ctx, 99, id); err != nil || !first {
			t.Fatalf("first claim of %d: %v %v", id, first, err)
		}
	}
	if again, err := h.svc.ClaimTelegramUpdate(h.ctx, 99, 2); err != nil || again {
		t.Fatalf("second claim: %v %v", again, err)
	}
	if first, err := h.svc.ClaimTelegramUpdate(h.ctx, 100, 2); err != nil || !first {
		t.Fatalf("another bot's update 2: %v %v", first, err)
	}
	if _, err := h.pool.Exec(h.ctx, `UPDATE telegram_updates SET seen_at = now() - interval '3 days' WHERE bot_id = 99 AND update_id < 3`); err != nil {
		t.Fatal(err)
	}
	// The bot's own pruning (at start, then hourly) may run first under
	// load; what counts is which rows are left.
	if _, err := h.svc.PruneTelegramUpdates(h.ctx, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	var left string
	h.queryRow(`SELECT string_agg(bot_id || ':' || update_id, ' ' ORDER BY bot_id, update_id) FROM telegram_updates WHERE bot_id IN (99, 100)`, nil, &left)
	if left != "99:3 100:2" {
		t.Fatalf("update ids left after pruning: %s, want 99:3 100:2", left)
	}
	if first, _ := h.svc.ClaimTelegramUpdate(h.ctx, 99, 3); first {
		t.Error("a recent update id was pruned")
	}
}

// TestHelpAndCommands: Help and /paysupport name the support contact,
// and the command menu is registered in both languages.
func TestHelpAndCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{fake: true})
	u := user(7201, "ru")
	h.tg.SendText(u, "/paysupport")
	if got := h.waitMessages(u.ID, 1)[0].Text; !strings.Contains(got, "@wgbot_support") || !strings.HasPrefix(got, "Вопрос об оплате") {
		t.Errorf("/paysupport = %q", got)
	}
	h.tg.SendText(u, "/help")
	if got := h.waitMessages(u.ID, 2)[1].Text; got != text(langRU, mHelp, "3 дня", "@wgbot_support") {
		t.Errorf("/help = %q", got)
	}
	h.wait("commands", func() bool { return len(h.tg.Commands("")) > 0 && len(h.tg.Commands("ru")) > 0 })
	for _, lang := range []string{"", "ru"} {
		var names []string
		for _, c := range h.tg.Commands(lang) {
			names = append(names, c.Command)
		}
		if strings.Join(names, " ") != "start help lang paysupport promo invite" {
			t.Errorf("commands for %q: %v", lang, names)
		}
	}
}

// TestDedupeOnlyWhileRedeliveryCan: Telegram redelivers an update only
// until it is confirmed, for a day at most, so an id is remembered only
// that long. A true redelivery within the window is dropped; after it, an
// id seen before is a new update (a restarted emulator, or Telegram's ids
// starting again after a week without updates) and is answered.
func TestDedupeOnlyWhileRedeliveryCan(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(7301, "en")
	first := h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.idle()
	if err := h.tg.Redeliver(first); err != nil {
		t.Fatal(err)
	}
	h.idle()
	if n := len(h.messages(u.ID)); n != 1 {
		t.Fatalf("a redelivery within the window was answered: %d messages", n)
	}

	// A day and more later, without pruning in between: the id is new again.
	if _, err := h.pool.Exec(h.ctx, `UPDATE telegram_updates SET seen_at = now() - interval '25 hours 1 minute' WHERE update_id = $1`, first); err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf(`{"update_id":%d,"message":{"message_id":50,"date":1,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"is_bot":false,"first_name":"U","language_code":"en"},"text":"/help","entities":[{"type":"bot_command","offset":0,"length":5}]}}`,
		first, u.ID, u.ID)
	var upd models.Update
	if err := json.Unmarshal([]byte(raw), &upd); err != nil {
		t.Fatal(err)
	}
	h.bot.handleUpdate(h.ctx, &upd)
	msgs := h.waitMessages(u.ID, 2)
	if msgs[1].Text != text(langEN, mHelp, "3 days", "@wgbot_support") {
		t.Errorf("update id %d, restarted after the window, got:\n%s", first, dump(msgs))
	}
	// And that one is deduplicated in its turn.
	h.bot.handleUpdate(h.ctx, &upd)
	h.idle()
	if n := len(h.messages(u.ID)); n != 2 {
		t.Errorf("the restarted id's redelivery was answered: %d messages", n)
	}
}

// TestClaimWindow: the claim itself forgets ids older than the window,
// whether or not the pruning has run; younger ones stay claimed.
func TestClaimWindow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for _, id := range []int64{1, 2} {
		if first, err := h.svc.ClaimTelegramUpdate(h.ctx, 98, id); err != nil || !first {
			t.Fatalf("first claim of %d: %v %v", id, first, err)
		}
	}
	if _, err := h.pool.Exec(h.ctx, `UPDATE telegram_updates SET seen_at = now() - interval '25 hours 1 minute' WHERE bot_id = 98 AND update_id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(h.ctx, `UPDATE telegram_updates SET seen_at = now() - interval '23 hours' WHERE bot_id = 98 AND update_id = 2`); err != nil {
		t.Fatal(err)
	}
	if first, err := h.svc.ClaimTelegramUpdate(h.ctx, 98, 1); err != nil || !first {
		t.Errorf("an id seen 25 hours ago: first=%v %v, want a new claim", first, err)
	}
	if first, err := h.svc.ClaimTelegramUpdate(h.ctx, 98, 1); err != nil || first {
		t.Errorf("the id claimed again just now: first=%v %v, want a duplicate", first, err)
	}
	if first, err := h.svc.ClaimTelegramUpdate(h.ctx, 98, 2); err != nil || first {
		t.Errorf("an id seen 23 hours ago (Telegram may still redeliver it): first=%v %v, want a duplicate", first, err)
	}
}
