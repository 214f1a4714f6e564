package telegram

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
)

// TestPreCheckoutSkipsTheLine: a user's Trial press waits on a slow
// WireGuard apply and a message waits behind it when the user's
// pre-checkout query arrives. Telegram cancels the payment unless it is
// answered within 10 seconds, so the query does not wait in the user's
// line: it is answered while the Trial is still waiting.
func TestPreCheckoutSkipsTheLine(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	var applying atomic.Int32
	h := newHarness(t, harnessOptions{applyWait: 30 * time.Second, apply: provisionFunc(func(ctx context.Context, _ wgbot.Change) error {
		applying.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})})
	t.Cleanup(unblock) // before the harness shuts down
	u := user(7301, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.press(u, "trial") // answered at once; the trial then waits for the apply
	h.eventually("the trial waiting for WireGuard", func() bool { return applying.Load() > 0 })
	h.tg.SendText(u, "/help") // queued behind the trial

	sent := time.Now()
	id := h.tg.PreCheckout(u, "XTR", 150, "987654")
	ctx, cancel := context.WithTimeout(h.ctx, 9*time.Second)
	defer cancel()
	var answer struct {
		ok  bool
		msg string
	}
	err := h.tg.Wait(ctx, func() bool {
		a, done := h.tg.PreCheckoutAnswer(id)
		answer.ok, answer.msg = a.OK, a.ErrorMessage
		return done
	})
	if err != nil {
		t.Fatalf("pre-checkout not answered within 9s while the user's Trial waits (Telegram cancels the payment at 10s): %v", err)
	}
	t.Logf("pre-checkout answered after %v", time.Since(sent).Round(time.Millisecond))
	if answer.ok || answer.msg == "" {
		t.Errorf("pre-checkout for no order answered ok=%v %q, want a refusal", answer.ok, answer.msg)
	}
	if docs := byMethod(h.messages(u.ID), "sendDocument"); len(docs) != 0 {
		t.Fatalf("the trial was delivered before WireGuard applied it:\n%s", dump(h.messages(u.ID)))
	}

	// The line goes on in order once WireGuard has the trial.
	unblock()
	h.wait("trial config", func() bool { return len(byMethod(h.messages(u.ID), "sendDocument")) == 1 })
	h.idle()
	doc, help := -1, -1
	for i, m := range h.messages(u.ID) {
		switch {
		case m.Method == "sendDocument":
			doc = i
		case strings.Contains(m.Text, "@wgbot_support"):
			help = i
		}
	}
	if help < doc {
		t.Errorf("the message queued behind the trial was answered before it:\n%s", dump(h.messages(u.ID)))
	}
}
