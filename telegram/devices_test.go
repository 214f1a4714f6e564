package telegram

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"wgbot"
	"wgbot/telegram/tgtest"
)

// peerOf returns the id of the user's active peer named name.
func (h *harness) peerOf(telegramID int64, name string) int64 {
	h.t.Helper()
	var id int64
	h.queryRow(`SELECT p.id FROM peers p JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1 AND p.name = $2 AND p.status = 'active'`, []any{telegramID, name}, &id)
	return id
}

func (h *harness) peerStatus(id int64) string {
	h.t.Helper()
	var status string
	h.queryRow(`SELECT status FROM peers WHERE id = $1`, []any{id}, &status)
	return status
}

// startTrial takes u through /start and Trial.
func (h *harness) startTrial(u tgtest.User) {
	h.t.Helper()
	before := len(h.messages(u.ID))
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, before+1)
	h.press(u, "trial")
	h.waitMessages(u.ID, before+4)
}

// TestForgedCallbacks: callback data naming another user's device, or
// malformed data, is refused with a neutral answer and changes nothing.
// The forgery is done the way an attacker would: the button press is
// real, its data is replaced on the way to the bot.
func TestForgedCallbacks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhook: true})
	alice, mallory := user(3101, "en"), user(3102, "en")
	h.startTrial(alice)
	h.startTrial(mallory)
	alicePeer, malloryPeer := h.peerOf(alice.ID, "device-1"), h.peerOf(mallory.ID, "device-1")
	h.press(mallory, "sub")

	id := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, tc := range []struct {
		name, real, forged string
		want               msg
	}{
		{"config of another user's device", "dev:cfg:" + id(malloryPeer), "dev:cfg:" + id(alicePeer), mErrNotFound},
		{"confirm removing another user's device", "dev:rm:" + id(malloryPeer), "dev:rm:" + id(alicePeer), mErrNotFound},
		{"remove another user's device without confirming", "dev:rm:" + id(malloryPeer), "dev:rmok:" + id(alicePeer), mErrNotFound},
		{"a device that does not exist", "dev:cfg:" + id(malloryPeer), "dev:cfg:999999", mErrNotFound},
		{"leading zero", "dev:cfg:" + id(malloryPeer), "dev:cfg:0" + id(alicePeer), mOutdated},
		{"negative id", "dev:cfg:" + id(malloryPeer), "dev:cfg:-" + id(alicePeer), mOutdated},
		{"extra field", "dev:cfg:" + id(malloryPeer), "dev:cfg:" + id(alicePeer) + ":x", mOutdated},
		{"unknown action", "dev:cfg:" + id(malloryPeer), "dev:steal:" + id(alicePeer), mOutdated},
		{"unknown language", "dev:cfg:" + id(malloryPeer), "lang:xx", mOutdated},
		{"plan outside the alphabet", "dev:cfg:" + id(malloryPeer), "buy:plan:mo nth", mOutdated},
		{"unknown plan", "dev:cfg:" + id(malloryPeer), "buy:plan:lifetime", mOutdated},
		{"unknown provider", "dev:cfg:" + id(malloryPeer), "buy:pay:paypal:month", mOutdated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.messages(mallory.ID))
			forge := func(body []byte) []byte {
				return bytes.Replace(body, []byte(`"data":"`+tc.real+`"`), []byte(`"data":"`+tc.forged+`"`), 1)
			}
			h.rewrite.Store(&forge)
			ans := h.press(mallory, tc.real)
			h.rewrite.Store(nil)
			if ans.Text != text(langEN, tc.want) || !ans.ShowAlert {
				t.Errorf("answer %+v, want alert %q", ans, text(langEN, tc.want))
			}
			h.idle()
			if after := h.messages(mallory.ID); len(after) != before {
				t.Errorf("forged press sent messages:\n%s", dump(after[before:]))
			}
			if h.peerStatus(alicePeer) != "active" || h.peerStatus(malloryPeer) != "active" {
				t.Error("a forged press changed a device")
			}
		})
	}
	if len(h.messages(alice.ID)) != 4 {
		t.Errorf("alice was sent something:\n%s", dump(h.messages(alice.ID)))
	}
}

// TestDevices: My subscription shows status, expiry, days left and the
// devices; a device is added up to the plan's limit, its config re-sent,
// and removed only after a confirmation.
func TestDevices(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(3201, "en")
	h.startTrial(u)
	steps, _ := h.withButton(u.ID, "sub!")
	h.press(u, "sub!")
	screen, _ := h.withButton(u.ID, "buy")
	if kept := h.message(u.ID, steps.ID); kept.Text != steps.Text || screen.ID == steps.ID {
		t.Error("opening My subscription from under the config overwrote the install steps")
	}
	if !strings.Contains(screen.Text, "Subscription: active") || !strings.Contains(screen.Text, " UTC (in 3 days)") ||
		!strings.Contains(screen.Text, "Devices: 1 of 1") || !strings.Contains(screen.Text, "device-1, 10.66.0.2") {
		t.Errorf("subscription screen:\n%s", screen.Text)
	}
	if _, ok := h.withButton(u.ID, "dev:add"); ok {
		t.Error("Add device offered at the trial's limit of 1")
	}

	// A bigger plan (here a grant) raises the limit.
	if _, _, err := h.svc.Grant(h.ctx, mustUser(h, u.ID), 1, 3); err != nil {
		t.Fatal(err)
	}
	first := h.peerOf(u.ID, "device-1")
	h.press(u, "sub!")
	n := len(h.messages(u.ID))
	h.press(u, "dev:add")
	msgs := h.waitMessages(u.ID, n+3)
	if doc := msgs[n]; doc.Document == nil || doc.Document.Name != "wgbot-device-2.conf" {
		t.Fatalf("Add device sent:\n%s", dump(msgs[n:]))
	}
	checkConfig(t, h, u.ID, msgs[n].Document.Data)
	second := h.peerOf(u.ID, "device-2")

	// Re-send the first device's config.
	h.press(u, "sub!")
	n = len(h.messages(u.ID))
	h.press(u, "dev:cfg:"+strconv.FormatInt(first, 10))
	msgs = h.waitMessages(u.ID, n+3)
	if doc := msgs[n]; doc.Document == nil || doc.Document.Name != "wgbot-device-1.conf" {
		t.Fatalf("re-send sent:\n%s", dump(msgs[n:]))
	}
	checkConfig(t, h, u.ID, msgs[n].Document.Data)

	// Removing asks first; Cancel keeps the device.
	h.press(u, "sub!")
	rm := "dev:rm:" + strconv.FormatInt(second, 10)
	h.press(u, rm)
	confirm, _ := h.withButton(u.ID, "dev:rmok:"+strconv.FormatInt(second, 10))
	if !strings.HasPrefix(confirm.Text, "Remove device-2 (10.66.0.3)?") {
		t.Errorf("confirmation = %q", confirm.Text)
	}
	h.press(u, "sub") // Cancel
	if h.peerStatus(second) != "active" {
		t.Error("Cancel removed the device")
	}
	h.press(u, rm)
	h.press(u, "dev:rmok:"+strconv.FormatInt(second, 10))
	h.eventually("device removed", func() bool { return h.peerStatus(second) == "revoked" })
	h.wait("the screen to say so", func() bool {
		return strings.HasPrefix(h.message(u.ID, confirm.ID).Text, "device-2 was removed.")
	})
	if h.peerStatus(first) != "active" {
		t.Error("removing device-2 touched device-1")
	}
}

func mustUser(h *harness, telegramID int64) wgbot.User {
	h.t.Helper()
	u, err := h.svc.UserByTelegramID(h.ctx, telegramID)
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}
