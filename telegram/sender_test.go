package telegram

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"wgbot"
	"wgbot/service"
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
			if _, err := h.svc.Register(h.ctx, wgbot.User{TelegramID: u.ID, Language: "en"}, ""); err != nil {
				t.Fatal(err)
			}
			for _, code := range tc.failures {
				h.tg.FailNext("sendMessage", u.ID, code, tc.retryAfter)
			}
			start := time.Now()
			err := h.bot.notify(h.ctx, u.ID, "Your subscription ends in 3 days.", Button{Text: "Extend", Screen: ScreenBuy}, Button{Text: "Site", URL: "https://example.com"})
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
	h := newHarness(t, harnessOptions{fake: true, config: func(c *Config) { c.SendAttempts = 2 }})
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

// TestNotifyExpiredAndDeviceIssued: the notifications jobs send speak the
// user's language, and a device sent now is sent once: its job, due while
// the test runs, finds it delivered.
func TestNotifyExpiredAndDeviceIssued(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(6201, "ru")
	h.tg.AddUser(u)
	reg, err := h.svc.Register(h.ctx, wgbot.User{TelegramID: u.ID, Language: "ru"}, "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.svc.IssueTrial(h.ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	h.bot.sendIssued(h.ctx, service.DeviceNotice{User: reg, Delivery: d, Reason: service.IssuedDevice})
	msgs := h.waitMessages(u.ID, 3)
	if msgs[0].Document == nil || msgs[0].Document.Name != "wgbot-device-1.conf" || !strings.HasPrefix(msgs[2].Text, "Действует до: ") || strings.Count(msgs[2].Text, " UTC") != 1 {
		t.Errorf("DeviceIssued sent:\n%s", dump(msgs))
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
	if got := h.waitMessages(u.ID, 6)[5].Text; got != text(langRU, mPaidExtended, h.bot.until(langRU, ends)) {
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
	reachable, err := h.store.Reachable(h.ctx)
	if err != nil || len(reachable) != 0 {
		t.Errorf("reachable after a block: %v %v", reachable, err)
	}
	h.tg.Unblock(u.ID)
	h.eventually("marked reachable", func() bool { return !mustUser(h, u.ID).BlockedBot })
}

// grants records the order in which a fairPacer hands out slots.
type grants struct {
	mu    sync.Mutex
	chats []int64
}

func (g *grants) add(chat int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.chats = append(g.chats, chat)
}

func (g *grants) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.chats)
}

// position is the index of chat's first slot, or -1.
func (g *grants) position(chat int64) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Index(g.chats, chat)
}

// TestFairPacer: one chat with 40 sends waiting, or 40 bulk sends, do not
// hold up another chat's reply by more than a slot or two (the old pacer
// served them first come first served); any second holds at most the
// global rate, and bulk sends keep to their own rate and pause.
func TestFairPacer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		backlog func(i int) (chat int64, bulk bool)
	}{
		{"one chat's backlog", func(int) (int64, bool) { return 1, false }},
		{"a broadcast's backlog", func(i int) (int64, bool) { return int64(100 + i), true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newFairPacer(50, 50)
			var g grants
			var wg sync.WaitGroup
			for i := range 40 {
				chat, bulk := tc.backlog(i)
				wg.Go(func() {
					if err := p.wait(ctx, chat, bulk); err != nil {
						t.Error(err)
					}
					g.add(chat)
				})
			}
			// Every backlog send is queued long before three slots (60ms)
			// have gone.
			for g.len() < 3 {
				time.Sleep(time.Millisecond)
			}
			before := g.len()
			if err := p.wait(ctx, 2, false); err != nil {
				t.Fatal(err)
			}
			g.add(2)
			wg.Wait()
			if pos := g.position(2); pos > before+2 {
				t.Errorf("the other chat's reply got slot %d, asked after slot %d: %v", pos, before, g.chats)
			}
		})
	}
	t.Run("rates and pause", func(t *testing.T) {
		t.Parallel()
		p := newFairPacer(50, 20)
		// A slot is granted between the call and its return. Counted from
		// the call of the first slot to the return of the last, n slots
		// within a second are surely within a second however late this
		// goroutine runs, so a stall cannot fail the test; a pacer handing
		// out too many still does.
		type span struct{ called, returned time.Time }
		within := func(spans []span, limit int) {
			t.Helper()
			for i := range spans {
				n := 0
				for j := i; j < len(spans) && spans[j].returned.Sub(spans[i].called) < time.Second; j++ {
					n++
				}
				if n > limit {
					t.Fatalf("%d slots within a second, want at most %d", n, limit)
				}
			}
		}
		take := func(chat int64, bulk bool) span {
			t.Helper()
			called := time.Now()
			if err := p.wait(ctx, chat, bulk); err != nil {
				t.Fatal(err)
			}
			return span{called, time.Now()}
		}
		var replies, bulk []span
		for i := range 60 {
			replies = append(replies, take(int64(i), false))
		}
		within(replies, 50)
		for i := range 25 {
			bulk = append(bulk, take(int64(i), true))
		}
		within(bulk, 20)
		// A pause holds bulk sends for at least its length.
		p.pauseBulk(300 * time.Millisecond)
		start := time.Now()
		take(1, true)
		if waited := time.Since(start); waited < 250*time.Millisecond {
			t.Errorf("a bulk send waited %v after a 300ms pause", waited)
		}
		// Replies go on during a pause, before the bulk send queued ahead
		// of them; the bulk send is granted only when the pause ends.
		p.pauseBulk(time.Hour)
		held, cancel := context.WithCancel(ctx)
		defer cancel()
		bulkDone := make(chan error, 1)
		go func() { bulkDone <- p.wait(held, 1, true) }()
		for queued := false; !queued; {
			p.mu.Lock()
			queued = len(p.lines[lineKey{chat: 1, bulk: true}]) > 0
			p.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
		replyCtx, cancelReply := context.WithTimeout(ctx, 20*time.Second)
		defer cancelReply()
		if err := p.wait(replyCtx, 2, false); err != nil {
			t.Fatalf("a reply behind a paused bulk send: %v", err)
		}
		select {
		case err := <-bulkDone:
			t.Fatalf("a bulk send was granted during an hour's pause (%v)", err)
		default:
		}
		cancel()
		if err := <-bulkDone; !errors.Is(err, context.Canceled) {
			t.Errorf("a paused bulk send whose context ended: %v", err)
		}
		if err := p.wait(ctx, 1, false); err != nil {
			t.Errorf("a reply after a given-up bulk send: %v", err)
		}
	})
}

// TestWrongTokenSaysSo: a token the Bot API refuses (401) is not an
// outage; the log names BOT_TOKEN, and Ready reports the refusal.
func TestWrongTokenSaysSo(t *testing.T) {
	h := newHarness(t, harnessOptions{fake: true, config: func(c *Config) { c.Token = "123:not-the-token" }})
	h.eventually("the refusal logged", func() bool { return strings.Contains(h.logs.String(), "refused BOT_TOKEN (401 Unauthorized)") })
	if err := h.bot.Ready(); err == nil {
		t.Fatal("Ready reports no error with a refused token")
	}
}
