package telegram

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"wgbot"
	"wgbot/postgres"
	"wgbot/telegram/tgtest"
)

// addLocation adds a server in location with a node that just reported,
// and returns its id.
func (h *harness) addLocation(name, location, subnet string) int64 {
	h.t.Helper()
	srv, err := h.store.AddServer(h.ctx, postgres.NewServer{Name: name, Location: location, Endpoint: name + ".example.com:51820",
		Subnet: netip.MustParsePrefix(subnet), MTU: 1420})
	if err != nil {
		h.t.Fatal(err)
	}
	key := strings.Repeat(name[:1], 43) + "="
	if err := h.store.RegisterNodeKey(h.ctx, srv.ID, key); err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.ReportNode(h.ctx, srv.ID, postgres.NodeReport{Revision: 1}); err != nil {
		h.t.Fatal(err)
	}
	return srv.ID
}

func (h *harness) peerServer(peerID int64) int64 {
	h.t.Helper()
	var id int64
	h.queryRow(`SELECT server_id FROM peers WHERE id = $1`, []any{peerID}, &id)
	return id
}

// TestLocations: with several locations the user picks one for the
// trial, is offered the others when theirs is down, and moves a device:
// the new config comes from the other location and the old peer goes
// when the user says the new one works. Forged location ids are refused.
func TestLocations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhook: true, locations: true})
	ams := h.addLocation("ams", "Amsterdam", "10.91.0.0/24")
	fra := h.addLocation("fra", "Frankfurt", "10.92.0.0/24")
	id := func(v int64) string { return strconv.FormatInt(v, 10) }

	alice := user(4101, "en")
	h.tg.SendText(alice, "/start")
	h.waitMessages(alice.ID, 1)
	h.press(alice, "trial")
	for _, data := range []string{"loc:t:" + id(ams), "loc:t:" + id(fra), "loc:t:any"} {
		if _, ok := h.withButton(alice.ID, data); !ok {
			t.Fatalf("no location button %q:\n%s", data, dump(h.messages(alice.ID)))
		}
	}
	before := len(h.messages(alice.ID))
	h.press(alice, "loc:t:"+id(fra))
	h.waitMessages(alice.ID, before+3)
	old := h.peerOf(alice.ID, "device-1")
	if got := h.peerServer(old); got != fra {
		t.Fatalf("trial peer on server %d, want Frankfurt (%d)", got, fra)
	}

	// Move it to Amsterdam.
	h.press(alice, "sub!")
	if m, _ := h.withButton(alice.ID, "dev:mv:"+id(old)); !strings.Contains(m.Text, "device-1, in Frankfurt") {
		t.Errorf("subscription screen does not say where the device is:\n%s", m.Text)
	}
	h.press(alice, "dev:mv:"+id(old))
	if _, ok := h.withButton(alice.ID, "loc:m:"+id(old)+":"+id(fra)); ok {
		t.Error("the device's own location is offered as a move")
	}
	before = len(h.messages(alice.ID))
	h.press(alice, "loc:m:"+id(old)+":"+id(ams))
	msgs := h.waitMessages(alice.ID, before+3)
	var moved int64
	h.queryRow(`SELECT p.id FROM peers p JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1 AND p.status = 'active' AND p.id <> $2`, []any{alice.ID, old}, &moved)
	if got := h.peerServer(moved); got != ams {
		t.Fatalf("moved peer on server %d, want Amsterdam (%d)", got, ams)
	}
	h.eventually("the confirm button", func() bool { _, ok := h.withButton(alice.ID, "dev:rmok:"+id(old)); return ok })
	if !strings.Contains(joinTexts(msgs[before:]), "now in Amsterdam") {
		t.Errorf("the new config does not say where it is:\n%s", dump(msgs[before:]))
	}
	var retiring bool
	h.queryRow(`SELECT retire_at IS NOT NULL FROM peers WHERE id = $1`, []any{old}, &retiring)
	if !retiring || h.peerStatus(old) != wgbot.PeerActive {
		t.Errorf("old peer: retiring %v, status %s; want it working until confirmed", retiring, h.peerStatus(old))
	}
	h.press(alice, "dev:rmok:"+id(old))
	if s := h.peerStatus(old); s != wgbot.PeerRevoked {
		t.Errorf("old peer %s after the user confirmed, want revoked", s)
	}

	// Frankfurt goes down: picking it issues nothing and offers the others.
	if _, err := h.pool.Exec(h.ctx, `UPDATE node_status SET seen_at = now() - interval '10 minutes' WHERE server_id = $1`, fra); err != nil {
		t.Fatal(err)
	}
	bob := user(4102, "ru")
	h.tg.SendText(bob, "/start")
	h.waitMessages(bob.ID, 1)
	h.press(bob, "trial")
	if m, _ := h.withButton(bob.ID, "loc:t:"+id(fra)); !strings.Contains(joinButtons(m), "недоступна") {
		t.Errorf("a down location is not marked so:\n%s", dump(h.messages(bob.ID)))
	}
	h.press(bob, "loc:t:"+id(fra))
	h.eventually("the location-down notice", func() bool {
		msgs := h.messages(bob.ID)
		return strings.Contains(msgs[len(msgs)-1].Text, text(langRU, mErrLocationDown))
	})
	var peers int
	h.queryRow(`SELECT count(*) FROM peers p JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1`, []any{bob.ID}, &peers)
	if peers != 0 {
		t.Errorf("%d peers issued in a down location", peers)
	}
	before = len(h.messages(bob.ID))
	h.press(bob, "loc:t:"+id(ams))
	h.waitMessages(bob.ID, before+3)
	if got := h.peerServer(h.peerOf(bob.ID, "device-1")); got != ams {
		t.Errorf("trial after picking again on server %d, want Amsterdam (%d)", got, ams)
	}

	// A location id that names no active server is refused, and the
	// user's choice stays as it was.
	carol := user(4103, "en")
	h.tg.SendText(carol, "/start")
	h.waitMessages(carol.ID, 1)
	h.press(carol, "trial")
	var main int64
	h.queryRow(`SELECT id FROM servers WHERE location = ''`, nil, &main)
	real, forged := `"data":"loc:t:`+id(ams)+`"`, `"data":"loc:t:`+id(main)+`"`
	forge := func(body []byte) []byte { return bytes.Replace(body, []byte(real), []byte(forged), 1) }
	h.rewrite.Store(&forge)
	h.press(carol, "loc:t:"+id(ams))
	h.rewrite.Store(nil)
	h.eventually("the refusal", func() bool {
		msgs := h.messages(carol.ID)
		return msgs[len(msgs)-1].Text == text(langEN, mOutdated)
	})
	var chosen int
	h.queryRow(`SELECT count(*) FROM user_locations l JOIN users u ON u.id = l.user_id WHERE u.telegram_id = $1`, []any{carol.ID}, &chosen)
	if chosen != 0 {
		t.Error("a forged location was recorded")
	}
}

func joinTexts(msgs []tgtest.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Text + m.Caption + "\n")
	}
	return b.String()
}

func joinButtons(m tgtest.Message) string {
	var b strings.Builder
	for _, row := range m.Keyboard {
		for _, btn := range row {
			b.WriteString(btn.Text + "\n")
		}
	}
	return b.String()
}
