package telegram

import (
	"context"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/importer"
	"wgbot/importer/importertest"
	"wgbot/service"
)

// TestClaimLinks: the claim links of imported devices, opened in the bot.
// A device whose private key came along arrives as its config and QR code
// (the old config, byte for byte the same keys); one imported from a
// wg-quick file is the user's without a config, and its config button
// says the one on the device keeps working; a used link and an unknown
// one are refused in words.
func TestClaimLinks(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	var serverID int64
	h.queryRow(`SELECT id FROM servers`, nil, &serverID)
	srvKey, _ := wgtypes.GeneratePrivateKey()
	easy := importertest.NewClient("Anna's phone", "10.66.0.40")
	quick := importertest.NewClient("old-laptop", "10.66.0.41")
	var tokens []string
	le, err := importer.Read(importer.FromWgEasy, importertest.WgEasyJSON(t, t.TempDir(), srvKey, []importertest.Client{easy}))
	if err != nil {
		t.Fatal(err)
	}
	lq, err := importer.WgQuick([]byte(importertest.WgQuick(srvKey, "10.66.0.1/22", []importertest.Client{quick})))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []importer.List{le, lq} {
		res, err := h.svc.Import(context.Background(), l, service.ImportOptions{ServerID: serverID, Apply: true, Days: 30})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, res.Claims...)
	}

	anna, boris, vera := user(801, "en"), user(802, "ru"), user(803, "en")
	h.tg.SendText(anna, "/start claim_"+tokens[0])
	msgs := h.waitMessages(anna.ID, 3)
	docs := byMethod(msgs, "sendDocument")
	if len(docs) != 1 || !strings.Contains(string(docs[0].Document.Data), "PrivateKey = "+easy.Key.String()) {
		t.Fatalf("the claimed device's own config was not sent:\n%s", dump(msgs))
	}
	if len(byMethod(msgs, "sendPhoto")) != 1 {
		t.Fatalf("no QR code:\n%s", dump(msgs))
	}

	h.tg.SendText(boris, "/start claim_"+tokens[0])
	if got := h.waitMessages(boris.ID, 1)[0].Text; got != text("ru", mClaimUsed) {
		t.Fatalf("a second opener: %q", got)
	}
	h.tg.SendText(vera, "/start claim_AAAAAAAAAAAAAAAAAAAAAA")
	if got := h.waitMessages(vera.ID, 1)[0].Text; got != text("en", mClaimUnknown) {
		t.Fatalf("an unknown link: %q", got)
	}

	// The wg-quick device: Anna's too, no config to send.
	h.tg.SendText(anna, "/start claim_"+tokens[1])
	msgs = h.waitMessages(anna.ID, 4)
	if last := msgs[len(msgs)-1]; !strings.Contains(last.Text, "old-laptop") || !strings.Contains(last.Text, "keeps working") {
		t.Fatalf("the key-less device's claim:\n%s", dump(msgs))
	}
	h.press(anna, "sub!")
	var quickID int64
	h.queryRow(`SELECT id FROM peers WHERE name = 'old-laptop'`, nil, &quickID)
	ans := h.press(anna, callback{act: actDeviceConfig, peerID: quickID}.data())
	if ans.Text != text("en", mNoClientKey, "old-laptop") || !ans.ShowAlert {
		t.Fatalf("the config button of a device without its private key: %+v", ans)
	}
	var owners int
	h.queryRow(`SELECT count(DISTINCT s.user_id) FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
		WHERE p.imported_from <> '' AND p.status = 'active'`, nil, &owners)
	if owners != 1 {
		t.Fatalf("both devices should be Anna's (one live subscription): %d owners", owners)
	}
}
