package telegram

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"wgbot"
)

// TestSender drives the one sender through Notify with the failures
// Telegram produces, and counts the emulator's requests.
func TestSender(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.SendAttempts = 3 }})
	for i, tc := range []struct {
		name        string
		failures    []int // status codes of the first tries, in order
		retryAfter  int
		wantErr     error // nil, ErrBlocked, or errAny
		wantTries   int
		wantBlocked bool
		minDuration time.Duration
	}{
		{name: "ok", wantTries: 1},
		{name: "429 waits retry_after", failures: []int{429}, retryAfter: 1, wantTries: 2, minDuration: time.Second},
		{name: "5xx is retried", failures: []int{502, 500}, wantTries: 3},
		{name: "5xx until attempts run out", failures: []int{503, 503, 503}, wantErr: errAny, wantTries: 3},
		{name: "403 marks blocked, no retry", failures: []int{403}, wantErr: ErrBlocked, wantTries: 1, wantBlocked: true},
		{name: "other 4xx is final", failures: []int{400}, wantErr: errAny, wantTries: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := user(int64(6000+i), "en")
			h.tg.AddUser(u)
			if _, err := h.svc.Register(h.ctx, wgbot.User{TelegramID: u.ID, Language: "en"}, 0); err != nil {
				t.Fatal(err)
			}
			for _, code := range tc.failures {
				h.tg.FailNext("sendMessage", u.ID, code, tc.retryAfter)
			}
			start := time.Now()
			err := h.bot.Notify(h.ctx, u.ID, "Your subscription ends in 3 days.", Button{Text: "Extend", Screen: ScreenBuy}, Button{Text: "Site", URL: "https://example.com"})
			took := time.Since(start)
			switch {
			case tc.wantErr == nil && err != nil, tc.wantErr == ErrBlocked && !errors.Is(err, wgbot.ErrUserBlocked), tc.wantErr == errAny && (err == nil || errors.Is(err, ErrBlocked)):
				t.Errorf("Notify: %v, want %v", err, tc.wantErr)
			}
			tries := 0
			for _, r := range h.tg.Requests() {
				if r.Method == "sendMessage" && r.ChatID == u.ID {
					tries++
				}
			}
			if tries != tc.wantTries {
				t.Errorf("%d tries, want %d", tries, tc.wantTries)
			}
			if took < tc.minDuration {
				t.Errorf("took %v, want at least %v", took, tc.minDuration)
			}
			blocked := mustUser(h, u.ID).BlockedBot
			if blocked != tc.wantBlocked {
				t.Errorf("blocked = %v, want %v", blocked, tc.wantBlocked)
			}
			if tc.wantErr == nil {
				m := h.messages(u.ID)[0]
				if len(m.Keyboard) != 2 || m.Keyboard[0][0].CallbackData != "buy!" || m.Keyboard[1][0].URL != "https://example.com" {
					t.Errorf("notification keyboard %+v", m.Keyboard)
				}
			}
		})
	}
	if !strings.Contains(h.logs.String(), "send failed") {
		t.Error("a send that finally failed was not logged")
	}
}

// errAny stands for "some error other than ErrBlocked" in a table.
var errAny = errors.New("any error")

// TestHandlerSurvivesFailedSends: when every send fails, handlers log and
// carry on; the bot still answers once Telegram recovers.
func TestHandlerSurvivesFailedSends(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{config: func(c *Config) { c.SendAttempts = 2 }})
	u := user(6101, "en")
	h.tg.AddUser(u)
	for range 2 {
		h.tg.FailNext("sendMessage", u.ID, http.StatusInternalServerError, 0)
	}
	h.tg.SendText(u, "/start")
	h.idle()
	if len(h.messages(u.ID)) != 0 {
		t.Fatal("a failing send got through")
	}
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
}

// TestNotifyExpiredAndDeliverConfig: the notifications jobs send speak the
// user's language, and DeliverConfig sends the config like the trial does.
func TestNotifyExpiredAndDeliverConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(6201, "ru")
	h.tg.AddUser(u)
	reg, err := h.svc.Register(h.ctx, wgbot.User{TelegramID: u.ID, Language: "ru"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.svc.IssueTrial(h.ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.bot.DeliverConfig(context.Background(), reg, d); err != nil {
		t.Fatal(err)
	}
	msgs := h.waitMessages(u.ID, 3)
	if msgs[0].Document == nil || msgs[0].Document.Name != "wgbot-device-1.conf" || !strings.HasPrefix(msgs[2].Text, "Как подключиться:") {
		t.Errorf("DeliverConfig sent:\n%s", dump(msgs))
	}
	if got := decodeQR(t, msgs[1].Photo.Data); got != string(d.Config) {
		t.Error("QR code does not hold the config")
	}
	if err := h.bot.NotifyExpired(h.ctx, u.ID, "ru"); err != nil {
		t.Fatal(err)
	}
	if got := h.waitMessages(u.ID, 4)[3]; got.Text != text(langRU, mSubscriptionEnded) || got.Keyboard[0][0].CallbackData != "buy!" {
		t.Errorf("NotifyExpired sent %q %+v", got.Text, got.Keyboard)
	}
	ends := time.Now().Add(50 * time.Hour)
	if err := h.bot.ExpiryReminder(h.ctx, reg, wgbot.Subscription{ExpiresAt: ends}, 3); err != nil {
		t.Fatal(err)
	}
	want := "Подписка заканчивается " + formatDate(ends) + ", через 3 дня."
	if got := h.waitMessages(u.ID, 5)[4]; !strings.HasPrefix(got.Text, want) || got.Keyboard[0][0].CallbackData != "buy!" {
		t.Errorf("ExpiryReminder sent %q, want %q...", got.Text, want)
	}
	// A payment credited by a provider's webhook, told by the job queue.
	if err := h.bot.PaymentCredited(h.ctx, reg, wgbot.Subscription{ExpiresAt: ends}, nil); err != nil {
		t.Fatal(err)
	}
	if got := h.waitMessages(u.ID, 6)[5].Text; got != text(langRU, mPaidExtended, formatDate(ends)) {
		t.Errorf("PaymentCredited sent %q", got)
	}
}

// TestBlockUpdates: Telegram's my_chat_member updates mark a user blocked
// when they block the bot and reachable again when they restart it.
func TestBlockUpdates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(6301, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.tg.Block(u.ID)
	h.eventually("marked blocked", func() bool { return mustUser(h, u.ID).BlockedBot })
	reachable, err := h.svc.Reachable(h.ctx)
	if err != nil || len(reachable) != 0 {
		t.Errorf("reachable after a block: %v %v", reachable, err)
	}
	h.tg.Unblock(u.ID)
	h.eventually("marked reachable", func() bool { return !mustUser(h, u.ID).BlockedBot })
}
