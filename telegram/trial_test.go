package telegram

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/telegram/tgtest"
)

// TestTrialStampede: 50 users press Trial at the same moment while one of
// them presses it 20 times. Every user gets exactly one config, with a
// distinct address, and one trial in the database.
func TestTrialStampede(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.GlobalRate = 200 }})
	const n = 50
	users := make([]tgtest.User, n)
	for i := range users {
		users[i] = user(int64(2000+i), "en")
		h.tg.SendText(users[i], "/start")
	}
	menus := map[int64]int{}
	for _, u := range users {
		m := h.waitMessages(u.ID, 1)[0]
		menus[u.ID] = m.ID
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	presses := make(chan int64, n+20)
	for i, u := range users {
		times := 1
		if i == 0 {
			times = 20
		}
		for range times {
			wg.Go(func() {
				<-start
				id, err := h.tg.PressButton(u, menus[u.ID], "trial")
				if err != nil {
					t.Error(err)
					return
				}
				presses <- id
			})
		}
	}
	close(start)
	wg.Wait()
	close(presses)
	h.wait("every press answered and every config sent", func() bool {
		for id := range presses {
			if _, ok := h.tg.CallbackAnswer(id); !ok {
				return false
			}
		}
		for _, u := range users {
			if len(byMethod(h.messages(u.ID), "sendDocument")) == 0 {
				return false
			}
		}
		return true
	})
	h.idle()

	seen := map[netip.Addr]int64{}
	for _, u := range users {
		msgs := h.messages(u.ID)
		docs := byMethod(msgs, "sendDocument")
		if len(docs) != 1 || len(byMethod(msgs, "sendPhoto")) != 1 {
			t.Errorf("user %d got %d configs:\n%s", u.ID, len(docs), dump(msgs))
			continue
		}
		checkConfig(t, h, u.ID, docs[0].Document.Data)
		var ip netip.Addr
		var trials int
		h.queryRow(`SELECT (SELECT count(*) FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE u.telegram_id = $1 AND s.is_trial),
			(SELECT p.ip FROM peers p JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id WHERE u.telegram_id = $1)`,
			[]any{u.ID}, &trials, &ip)
		if trials != 1 {
			t.Errorf("user %d has %d trials", u.ID, trials)
		}
		if other, dup := seen[ip]; dup {
			t.Errorf("users %d and %d share %s", other, u.ID, ip)
		}
		seen[ip] = u.ID
	}
	// Presses after the trial was issued were told why nothing more came;
	// presses during it were answered "working on it" on the button.
	for _, m := range byMethod(h.messages(users[0].ID), "sendMessage")[1:] {
		if m.Text != text(langEN, mErrTrialUsed) && m.Text != text(langEN, mErrHasAccess) && !strings.HasPrefix(m.Text, "Your free trial is active") {
			t.Errorf("unexpected reply to a repeated press: %q", m.Text)
		}
	}
}

// TestTrialRefusals: a second trial is refused in plain words; a trial
// the VPN server could not take is not burned, and the user sees the
// catalogue's words, never the internal error (which the log has).
func TestTrialRefusals(t *testing.T) {
	t.Parallel()
	var failing sync.Mutex
	fail := true
	apply := provisionFunc(func(context.Context, wgbot.Change) error {
		failing.Lock()
		defer failing.Unlock()
		if fail {
			return errBoom
		}
		return nil
	})
	h := newHarness(t, harnessOptions{apply: apply})
	u := user(2101, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)

	h.press(u, "trial")
	refusal := h.waitMessages(u.ID, 2)[1]
	if refusal.Text != text(langEN, mErrApplyFailed) {
		t.Errorf("failed apply answered %q", refusal.Text)
	}
	if strings.Contains(refusal.Text, "0xdeadbeef") || !strings.Contains(h.logs.String(), "0xdeadbeef") {
		t.Error("the internal error must be in the log and not in the chat")
	}

	failing.Lock()
	fail = false
	failing.Unlock()
	h.press(u, "trial")
	msgs := h.waitMessages(u.ID, 5)
	if msgs[2].Method != "sendDocument" {
		t.Fatalf("trial after a failed apply:\n%s", dump(msgs))
	}
	// A press while the trial is still being handled is the same action
	// (answered "working on it"); this one comes after.
	h.idle()
	// The trial is live and its config was just sent: the user is told
	// so, not asked to pay, and not sent the config once more.
	h.press(u, "trial")
	again := h.waitMessages(u.ID, 6)[5]
	if want := text(langEN, mTrialIssued, h.bot.until(langEN, liveExpiry(t, h, u.ID))); again.Text != want {
		t.Errorf("second trial answered %q, want %q", again.Text, want)
	}
	if docs := byMethod(h.messages(u.ID), "sendDocument"); len(docs) != 1 {
		t.Errorf("%d configs after a second press, want 1", len(docs))
	}
	var trials int
	h.queryRow(`SELECT count(*) FROM subscriptions WHERE is_trial`, nil, &trials)
	if trials != 1 {
		t.Errorf("%d trials in the database, want 1", trials)
	}
}

// TestGracefulShutdown: Run returns only after a handler that was running
// when its context ended has finished and delivered.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	apply := provisionFunc(func(context.Context, wgbot.Change) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	h := newHarness(t, harnessOptions{apply: apply})
	u := user(2201, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.pressNoWait(u, "trial")
	select {
	case <-entered:
	case <-h.ctx.Done():
		t.Fatal("the trial never reached the VPN server")
	}
	h.stop()
	h.stop = nil
	select {
	case err := <-h.stopped:
		t.Fatalf("Run returned (%v) while a handler was still running", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-h.stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the handler finished")
	}
	if docs := byMethod(h.messages(u.ID), "sendDocument"); len(docs) != 1 {
		t.Errorf("the in-flight trial delivered %d configs, want 1", len(docs))
	}
	// Updates arriving after shutdown are left to Telegram (and the next
	// process) instead of being half-handled.
	if h.bot.dispatch(nil) {
		t.Error("dispatch accepted an update after Run returned")
	}
}

// liveExpiry is the expiry of the user's live subscription.
func liveExpiry(t *testing.T, h *harness, telegramID int64) time.Time {
	t.Helper()
	var at time.Time
	h.queryRow(`SELECT s.expires_at FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE u.telegram_id = $1 AND s.status = 'active'`,
		[]any{telegramID}, &at)
	return at
}
