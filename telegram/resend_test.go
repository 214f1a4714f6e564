package telegram

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/telegram/tgtest"
)

// TestResendWaitsForFirstDelivery: a press for access the user has, or
// for a device's config, never sends a config whose first delivery is
// not recorded: not while WireGuard has yet to apply the device (the
// config would not work, and the device could no longer be taken back),
// and not while its first delivery is being sent (the user would get it
// twice). The user is told it is on its way, and the device stays
// undelivered for its own sender.
func TestResendWaitsForFirstDelivery(t *testing.T) {
	t.Parallel()
	var hold atomic.Bool
	var applying atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	h := newHarness(t, harnessOptions{applyWait: 30 * time.Second, apply: provisionFunc(func(ctx context.Context, _ wgbot.Change) error {
		if !hold.Load() {
			return nil
		}
		applying.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})})
	t.Cleanup(unblock) // before the harness shuts down
	onItsWay := text(langEN, mConfigOnItsWay)
	undelivered := func(telegramID int64) int {
		var n int
		h.queryRow(`SELECT count(*) FROM peers p JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id
			WHERE u.telegram_id = $1 AND p.delivered_at IS NULL`, []any{telegramID}, &n)
		return n
	}
	// pressed presses data and returns the messages it sent and its answer.
	pressed := func(u tgtest.User, data string) ([]tgtest.Message, tgtest.CallbackAnswer) {
		t.Helper()
		h.idle()
		before := len(h.messages(u.ID))
		ans := h.press(u, data)
		h.idle()
		return h.messages(u.ID)[before:], ans
	}
	register := func(u tgtest.User) wgbot.User {
		t.Helper()
		h.tg.SendText(u, "/start")
		h.waitMessages(u.ID, 1)
		registered, err := h.svc.UserByTelegramID(h.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return registered
	}

	t.Run("WireGuard has not applied it", func(t *testing.T) {
		u := user(7401, "en")
		registered := register(u)
		hold.Store(true)
		grantDone := make(chan error, 1)
		go func() { _, _, err := h.svc.Grant(context.WithoutCancel(h.ctx), registered, 30, 3); grantDone <- err }()
		h.eventually("the grant waiting for WireGuard", func() bool { return applying.Load() > 0 })

		msgs, _ := pressed(u, "trial")
		if len(byMethod(msgs, "sendDocument")) != 0 || len(msgs) != 1 || msgs[0].Text != onItsWay {
			t.Errorf("Trial pressed while the granted device waits for WireGuard sent:\n%s", dump(msgs))
		}
		var peerID int64
		h.queryRow(`SELECT p.id FROM peers p JOIN subscriptions s ON s.id = p.subscription_id WHERE s.user_id = $1`, []any{registered.ID}, &peerID)
		h.press(u, "sub")
		msgs, ans := pressed(u, "dev:cfg:"+strconv.FormatInt(peerID, 10))
		if len(byMethod(msgs, "sendDocument")) != 0 || ans.Text != onItsWay || !ans.ShowAlert {
			t.Errorf("the device's config button answered %+v and sent:\n%s", ans, dump(msgs))
		}
		if n := undelivered(u.ID); n != 1 {
			t.Errorf("%d undelivered devices after the presses, want 1 (its own sender delivers it)", n)
		}
		hold.Store(false)
		unblock()
		if err := <-grantDone; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("its first delivery is being sent", func(t *testing.T) {
		u := user(7402, "en")
		registered := register(u)
		_, d, err := h.svc.Grant(h.ctx, registered, 30, 3)
		if err != nil || d == nil {
			t.Fatalf("grant: %v, %v", d, err)
		}
		var during []tgtest.Message
		sent, err := h.svc.SendIssued(h.ctx, d.Peer.ID, func(context.Context) error {
			// The first delivery holds its claim: the user presses now.
			during, _ = pressed(u, "trial")
			return nil
		})
		if err != nil || !sent {
			t.Fatalf("SendIssued: sent %v, %v", sent, err)
		}
		if len(byMethod(during, "sendDocument")) != 0 || len(during) != 1 || during[0].Text != onItsWay {
			t.Errorf("Trial pressed while the first delivery is sent:\n%s", dump(during))
		}
		// Delivered now, and a while ago: a press re-sends it.
		h.mustExec(`UPDATE peers SET delivered_at = now() - interval '1 minute' WHERE id = $1`, d.Peer.ID)
		msgs, _ := pressed(u, "trial")
		if docs := byMethod(msgs, "sendDocument"); len(docs) != 1 {
			t.Errorf("Trial pressed once the config was delivered sent:\n%s", dump(msgs))
		}
	})
}
