package telegram

import (
	"bytes"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgconf"
)

// TestConversation is the path every new user takes, in both update
// modes: /start → menu → Trial → a .conf document whose address and keys
// are the ones in the database, a QR code holding the same text, and the
// install steps.
func TestConversation(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name    string
		webhook bool
	}{{"long polling", false}, {"webhook", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{webhook: mode.webhook})
			if mode.webhook {
				url, secret := h.tg.Webhook()
				if url != h.hook.URL+"/telegram/webhook" || secret == "" {
					t.Fatalf("webhook set to %q with secret %q", url, secret)
				}
				if h.bot.WebhookPath() != "/telegram/webhook" {
					t.Errorf("WebhookPath = %q", h.bot.WebhookPath())
				}
			}
			ann := user(1001, "en-GB")
			h.tg.SendText(ann, "/start")
			welcome := h.waitMessages(ann.ID, 1)[0]
			if !strings.HasPrefix(welcome.Text, "Hi, User1001!") || !strings.HasSuffix(welcome.Text, text(langEN, mMenu)) {
				t.Errorf("welcome = %q", welcome.Text)
			}
			if _, ok := h.withButton(ann.ID, "trial"); !ok {
				t.Fatalf("no Trial button in the menu:\n%s", dump(h.messages(ann.ID)))
			}
			var lang string
			h.queryRow(`SELECT language FROM users WHERE telegram_id = $1`, []any{ann.ID}, &lang)
			if lang != langEN {
				t.Errorf("stored language %q, want en", lang)
			}

			h.press(ann, "trial")
			msgs := h.waitMessages(ann.ID, 4)
			doc, photo, steps := msgs[1], msgs[2], msgs[3]
			if doc.Method != "sendDocument" || doc.Document == nil || photo.Method != "sendPhoto" || photo.Photo == nil || steps.Method != "sendMessage" {
				t.Fatalf("after Trial the bot sent:\n%s", dump(msgs))
			}
			if doc.Document.Name != "wgbot-device-1.conf" {
				t.Errorf("config file name %q", doc.Document.Name)
			}
			checkConfig(t, h, ann.ID, doc.Document.Data)
			if got := decodeQR(t, photo.Photo.Data); got != string(doc.Document.Data) {
				t.Errorf("QR code holds\n%s\nwant the config\n%s", got, doc.Document.Data)
			}
			if !strings.Contains(steps.Text, "wgbot-device-1.conf") || !strings.Contains(steps.Text, "Scan from QR code") ||
				!strings.HasPrefix(steps.Text, "Your free trial is active until ") {
				t.Errorf("install steps = %q", steps.Text)
			}
		})
	}
}

// checkConfig proves a delivered .conf is the user's peer: its address is
// the peer's tunnel IP and its private key belongs to the peer's public
// key in the database.
func checkConfig(t *testing.T, h *harness, telegramID int64, conf []byte) {
	t.Helper()
	f, err := wgconf.Parse(conf)
	if err != nil {
		t.Fatalf("delivered config does not parse: %v\n%s", err, conf)
	}
	iface, ok := f.Interface()
	if !ok || len(iface.Addresses) == 0 {
		t.Fatalf("config has no [Interface] address:\n%s", conf)
	}
	priv, err := wgtypes.ParseKey(iface.PrivateKey)
	if err != nil {
		t.Fatalf("config private key: %v", err)
	}
	var ip netip.Addr
	h.queryRow(`SELECT p.ip FROM peers p JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1 AND p.public_key = $2 AND p.status = 'active'`, []any{telegramID, priv.PublicKey().String()}, &ip)
	if iface.Addresses[0].Addr() != ip {
		t.Errorf("config address %s, peer's IP %s", iface.Addresses[0], ip)
	}
}

// TestWebhookAuth: a call without the secret, or with a wrong one, is
// refused with 401 before anything is read, and changes nothing; an
// oversized body is refused too.
func TestWebhookAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhook: true})
	_, secret := h.tg.Webhook()
	update := `{"update_id":777,"message":{"message_id":1,"date":1,"chat":{"id":3003,"type":"private"},"from":{"id":3003,"is_bot":false,"first_name":"Eve"},"text":"/start","entities":[{"type":"bot_command","offset":0,"length":6}]}}`
	post := func(secretHeader, body string) int {
		req, _ := http.NewRequestWithContext(h.ctx, http.MethodPost, h.hook.URL+"/telegram/webhook", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if secretHeader != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secretHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, secret, body string
		want               int
	}{
		{"no secret", "", update, http.StatusUnauthorized},
		{"wrong secret", "not-the-secret", update, http.StatusUnauthorized},
		{"secret with a suffix", secret + "x", update, http.StatusUnauthorized},
		{"secret's prefix", secret[:len(secret)-1], update, http.StatusUnauthorized},
		{"right secret, oversized body", secret, `{"update_id":1,"message":{"text":"` + strings.Repeat("a", 2<<20) + `"}}`, http.StatusRequestEntityTooLarge},
		{"right secret, garbage", secret, "\x00\x01 not json", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.secret, tc.body); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	h.idle()
	var users int
	h.queryRow(`SELECT count(*) FROM users`, nil, &users)
	if users != 0 || len(h.messages(3003)) != 0 {
		t.Errorf("refused webhook calls changed something: %d users", users)
	}
	// The same update with the secret is taken: the refusals above were
	// about the secret, not the update.
	h.tg.AddUser(tgtest.User{ID: 3003, FirstName: "Eve"})
	if got := post(secret, update); got != http.StatusOK {
		t.Fatalf("with the secret: status %d", got)
	}
	h.waitMessages(3003, 1)
}

// TestLanguageAndReferrer: the language follows language_code (ru* is
// Russian), /lang switches it, and /start ref_<id> records the referrer.
func TestLanguageAndReferrer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ann, boris := user(1101, "en"), user(1102, "ru-RU")
	h.tg.SendText(ann, "/start")
	h.waitMessages(ann.ID, 1)
	// Ann's link, from "Invite friends": a code, not her Telegram id.
	h.tg.SendText(ann, "/invite")
	invite := h.waitMessages(ann.ID, 2)[1].Text
	link := regexp.MustCompile(`https://t\.me/[A-Za-z0-9_]+\?start=ref_([a-z0-9]+)`).FindStringSubmatch(invite)
	if link == nil || strings.Contains(link[1], strconv.FormatInt(ann.ID, 10)) {
		t.Fatalf("invite screen without a referral link by code: %q", invite)
	}
	// A link with a Telegram id, the old form, refers nobody.
	h.tg.SendText(user(1105, ""), "/start ref_"+strconv.FormatInt(ann.ID, 10))
	h.waitMessages(1105, 1)
	h.tg.SendText(boris, "/start ref_"+link[1])
	hello := h.waitMessages(boris.ID, 1)[0]
	if !strings.HasPrefix(hello.Text, "Привет, User1102!") {
		t.Errorf("Russian welcome = %q", hello.Text)
	}
	var referrer int64
	var lang string
	h.queryRow(`SELECT COALESCE(r.telegram_id, 0), u.language FROM users u LEFT JOIN users r ON r.id = u.referrer_id WHERE u.telegram_id = $1`, []any{boris.ID}, &referrer, &lang)
	if referrer != ann.ID || lang != langRU {
		t.Errorf("referrer %d language %q, want %d ru", referrer, lang, ann.ID)
	}

	h.tg.SendText(boris, "/lang")
	h.waitMessages(boris.ID, 2)
	chooser, _ := h.withButton(boris.ID, "lang:en")
	h.press(boris, "lang:en")
	h.wait("the chooser to become the menu", func() bool { return !h.message(boris.ID, chooser.ID).EditedAt.IsZero() })
	menu := h.message(boris.ID, chooser.ID)
	if !strings.HasPrefix(menu.Text, "Language: English.") || menu.Keyboard[0][0].Text != text(langEN, mBtnTrial) {
		t.Errorf("after switching to English: %q %+v", menu.Text, menu.Keyboard)
	}
	h.queryRow(`SELECT language FROM users WHERE telegram_id = $1`, []any{boris.ID}, &lang)
	if lang != langEN {
		t.Errorf("stored language %q after /lang, want en", lang)
	}
	// A self-referral, a second /start by a link, or a malformed one
	// records nothing.
	h.tg.SendText(ann, "/start ref_"+link[1])
	h.waitMessages(ann.ID, 3)
	carl := user(1103, "")
	h.tg.SendText(carl, "/start")
	h.waitMessages(carl.ID, 1)
	h.tg.SendText(carl, "/start ref_"+link[1])
	h.tg.SendText(user(1104, ""), "/start ref_-5")
	h.waitMessages(carl.ID, 2)
	h.waitMessages(1104, 1)
	var refs int
	h.queryRow(`SELECT count(*) FROM users WHERE referrer_id IS NOT NULL`, nil, &refs)
	if refs != 1 {
		t.Errorf("%d users with a referrer, want 1", refs)
	}
	// Ann's screen counts Boris, in her language's plural form.
	h.tg.SendText(ann, "/invite")
	if got := h.waitMessages(ann.ID, 4)[3].Text; !strings.Contains(got, text(langEN, mInviteStats, "1 friend", 0, "0 days")) {
		t.Errorf("invite screen after one friend joined: %q", got)
	}
}

// TestBadInput (issue 17, item 7): an unknown command gets one line
// naming it and a way back, a text longer than Telegram allows gets one
// line, plain text gets the menu; a redelivered update is handled once.
func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{fake: true})
	for i, lang := range languages() {
		u := user(int64(1201+i), lang)
		id := h.tg.SendText(u, "/nosuchcommand with args")
		if got := h.waitMessages(u.ID, 1)[0]; got.Text != text(lang, mUnknownCommand, "nosuchcommand") || buttons(got)[0] != "menu" {
			t.Errorf("unknown command answered:\n%s", dump([]tgtest.Message{got}))
		}
		for range 3 {
			if err := h.tg.Redeliver(id); err != nil {
				t.Fatal(err)
			}
		}
		h.tg.SendText(u, strings.Repeat("я", maxTextRunes+1)) // longer than Telegram allows
		if got := h.waitMessages(u.ID, 2)[1].Text; got != text(lang, mTooLong) {
			t.Errorf("a too long text answered %q", got)
		}
		h.tg.SendText(u, "hello")
		h.waitMessages(u.ID, 3)
		h.idle()
		msgs := h.messages(u.ID)
		if len(msgs) != 3 || msgs[2].Text != text(lang, mMenu) {
			t.Errorf("after redeliveries and garbage the bot sent:\n%s", dump(msgs))
		}
	}
	if !bytes.Contains([]byte(h.logs.String()), []byte("update already handled")) {
		t.Error("redelivered update not reported as a duplicate")
	}
}

// TestSupportIsReachable (issue 17, item 6): /help and /paysupport name
// SUPPORT_CONTACT and, for an @username, link to it.
func TestSupportIsReachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{fake: true})
	for i, lang := range languages() {
		u := user(int64(1301+i), lang)
		for j, cmd := range []string{"/help", "/paysupport"} {
			h.tg.SendText(u, cmd)
			got := h.waitMessages(u.ID, j+1)[j]
			if !strings.Contains(got.Text, "@wgbot_support") || got.Keyboard[0][0].URL != "https://t.me/wgbot_support" ||
				got.Keyboard[0][0].Text != text(lang, mBtnSupport) {
				t.Errorf("%s %s:\n%s", lang, cmd, dump([]tgtest.Message{got}))
			}
		}
	}
}
