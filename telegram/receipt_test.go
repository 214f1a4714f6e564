package telegram

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"wgbot"
	"wgbot/postgres"
	"wgbot/telegram/tgtest"
)

// receiptCheckout is a card provider that, like YooKassa with receipts on,
// cannot open a checkout before the user gave an email or phone.
type receiptCheckout struct {
	fakeCheckout
	contact func(ctx context.Context, userID int64) (string, error)
}

func (c *receiptCheckout) Start(ctx context.Context, o wgbot.Order, u wgbot.User) (string, error) {
	contact, err := c.contact(ctx, o.UserID)
	if err != nil {
		return "", err
	}
	if contact == "" {
		return "", wgbot.ErrReceiptContactNeeded
	}
	return c.fakeCheckout.Start(ctx, o, u)
}

// TestReceiptContactAskedOnce: the first card payment asks for the receipt
// contact in the user's language; a bad one is refused and changes
// nothing; a good one is stored and the next Pay press opens the checkout
// without asking again.
func TestReceiptContactAskedOnce(t *testing.T) {
	t.Parallel()
	card := &receiptCheckout{fakeCheckout: fakeCheckout{orders: make(chan wgbot.Order, 4)}}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card}})
	card.contact = h.svc.ReceiptContact
	for _, tc := range []struct {
		id      int64
		lang    string
		typed   string
		contact string
	}{{6301, langEN, "ann@example.com", "ann@example.com"}, {6302, langRU, "8 (900) 123-45-67", "79001234567"}} {
		u := user(tc.id, tc.lang)
		h.tg.SendText(u, "/start")
		n := len(h.waitMessages(u.ID, 1))
		pay := func() {
			h.press(u, "buy")
			h.press(u, "buy:plan:quarter")
			h.press(u, "buy:pay:card:quarter")
		}
		pay()
		msgs := h.waitMessages(u.ID, n+1)
		if got := msgs[len(msgs)-1].Text; got != text(tc.lang, mReceiptAsk) {
			t.Fatalf("%s: the first card payment answered %q", tc.lang, got)
		}
		n = len(msgs)
		h.tg.SendText(u, "+7 900")
		if got := h.waitMessages(u.ID, n+1)[n].Text; got != text(tc.lang, mErrReceiptContact) {
			t.Errorf("%s: a bad contact answered %q", tc.lang, got)
		}
		if c, _ := h.svc.ReceiptContact(h.ctx, userIDOf(t, h, tc.id)); c != "" {
			t.Fatalf("a bad contact was stored: %q", c)
		}
		h.tg.SendText(u, tc.typed)
		if got := h.waitMessages(u.ID, n+2)[n+1].Text; got != text(tc.lang, mReceiptSaved, tc.contact) {
			t.Errorf("%s: the contact answered %q", tc.lang, got)
		}
		n += 2
		pay()
		<-card.orders
		msgs = h.waitMessages(u.ID, n+1)
		if last := msgs[len(msgs)-1]; len(last.Keyboard) == 0 || !strings.HasPrefix(last.Keyboard[0][0].URL, "https://pay.example.com/checkout/") {
			t.Errorf("%s: after the contact, Pay showed:\n%s", tc.lang, dump(msgs))
		}
	}
	if text(langRU, mReceiptAsk) == text(langEN, mReceiptAsk) {
		t.Error("the Russian question is the English one")
	}
}

func userIDOf(t *testing.T, h *harness, telegramID int64) int64 {
	t.Helper()
	u, err := h.svc.UserByTelegramID(h.ctx, telegramID)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestAutorenewConsentAndCancel: /autorenew explains, "on" records the
// consent with a Cancel button, and the button turns it off, in ru and en.
func TestAutorenewConsentAndCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	for _, tc := range []struct {
		id   int64
		lang string
	}{{6401, langEN}, {6402, langRU}} {
		u := user(tc.id, tc.lang)
		h.tg.SendText(u, "/start")
		h.waitMessages(u.ID, 1)
		h.tg.SendText(u, "/autorenew")
		if got := h.waitMessages(u.ID, 2)[1].Text; got != text(tc.lang, mAutorenewAbout) {
			t.Errorf("%s: /autorenew answered %q", tc.lang, got)
		}
		h.tg.SendText(u, "/autorenew on")
		on := h.waitMessages(u.ID, 3)[2]
		if on.Text != text(tc.lang, mAutorenewOn) || on.Keyboard[0][0].Text != text(tc.lang, mBtnAutorenewOff) {
			t.Errorf("%s: /autorenew on answered %+v", tc.lang, on)
		}
		id := userIDOf(t, h, tc.id)
		if c, err := h.svc.AutorenewConsent(h.ctx, id); err != nil || !c {
			t.Fatalf("%s: consent %v %v", tc.lang, c, err)
		}
		h.press(u, "aroff")
		// The Cancel button's message is edited in place.
		h.wait("the Cancel's answer", func() bool {
			msgs := h.messages(u.ID)
			return msgs[len(msgs)-1].Text == text(tc.lang, mAutorenewOff)
		})
		if c, _ := h.svc.AutorenewConsent(h.ctx, id); c {
			t.Fatalf("%s: consent still on after Cancel", tc.lang)
		}
	}
}

// savingCheckout is a card provider that can save the card for renewals,
// as YooKassa does with YOOKASSA_AUTORENEW on.
type savingCheckout struct{ fakeCheckout }

func (c *savingCheckout) SavesCards() bool { return true }

// TestCheckoutConsentBox: a saving checkout's screen carries the box
// "renew automatically with this card", unticked by default; ticking it
// records the consent and shows, in place, the link of an order that saves
// the card, with the terms; unticking goes back to the order that does not
// and keeps a card saved before. /autorenew on ticks it in advance. In ru
// and en.
func TestCheckoutConsentBox(t *testing.T) {
	t.Parallel()
	card := &savingCheckout{fakeCheckout{orders: make(chan wgbot.Order, 8)}}
	h := newHarness(t, harnessOptions{checkouts: []Checkout{card}})
	for _, tc := range []struct {
		id   int64
		lang string
	}{{6501, langEN}, {6502, langRU}} {
		u := user(tc.id, tc.lang)
		h.tg.SendText(u, "/start")
		n := len(h.waitMessages(u.ID, 1))
		h.press(u, "buy")
		h.press(u, "buy:plan:quarter")
		h.press(u, "buy:pay:card:quarter")
		plain := <-card.orders
		screen := h.waitMessages(u.ID, n+1)[n]
		if plain.SaveCard || len(screen.Keyboard) != 3 || screen.Keyboard[1][0].Text != text(tc.lang, mBtnSaveCardOff) ||
			screen.Keyboard[1][0].CallbackData != "buy:card:card:quarter:on" || strings.Contains(screen.Text, text(tc.lang, mSaveCardTerms)) {
			t.Fatalf("%s: order %+v, the checkout screen:\n%s", tc.lang, plain, dump([]tgtest.Message{screen}))
		}
		id := userIDOf(t, h, tc.id)
		// A card saved before, to see that unticking leaves it alone.
		if err := h.svc.SaveAutorenewal(h.ctx, postgres.Autorenewal{UserID: id, Provider: "card", MethodID: "pm-old", Plan: "quarter"}); err != nil {
			t.Fatal(err)
		}

		h.press(u, "buy:card:card:quarter:on")
		saving := <-card.orders
		h.wait("the ticked box", func() bool {
			m := h.message(u.ID, screen.ID)
			return len(m.Keyboard) == 3 && m.Keyboard[1][0].Text == text(tc.lang, mBtnSaveCardOn)
		})
		ticked := h.message(u.ID, screen.ID)
		if !saving.SaveCard || saving.ID == plain.ID || ticked.Keyboard[0][0].URL != "https://pay.example.com/checkout/"+strconv.FormatInt(saving.ID, 10) ||
			ticked.Keyboard[1][0].CallbackData != "buy:card:card:quarter:off" || !strings.Contains(ticked.Text, text(tc.lang, mSaveCardTerms)) {
			t.Errorf("%s: ticked: order %+v, screen:\n%s", tc.lang, saving, dump([]tgtest.Message{ticked}))
		}
		if c, err := h.svc.AutorenewConsent(h.ctx, id); err != nil || !c {
			t.Errorf("%s: consent after the tick: %v %v", tc.lang, c, err)
		}
		if got := len(h.messages(u.ID)); got != n+1 {
			t.Errorf("%s: the tick sent a new message instead of editing the screen:\n%s", tc.lang, dump(h.messages(u.ID)))
		}

		h.press(u, "buy:card:card:quarter:off")
		h.wait("the unticked box", func() bool {
			m := h.message(u.ID, screen.ID)
			return len(m.Keyboard) == 3 && m.Keyboard[1][0].Text == text(tc.lang, mBtnSaveCardOff)
		})
		// The open order without the consent is shown again, not made anew.
		if m := h.message(u.ID, screen.ID); m.Keyboard[0][0].URL != "https://pay.example.com/checkout/"+strconv.FormatInt(plain.ID, 10) {
			t.Errorf("%s: unticked, the link is %q, want the first order's", tc.lang, m.Keyboard[0][0].URL)
		}
		if c, _ := h.svc.AutorenewConsent(h.ctx, id); c {
			t.Errorf("%s: consent still on after the untick", tc.lang)
		}
		if _, on, err := h.store.ActiveAutorenewal(h.ctx, id); err != nil || !on {
			t.Errorf("%s: unticking canceled the card saved before: %v %v", tc.lang, on, err)
		}
		select {
		case o := <-card.orders:
			t.Errorf("%s: unticking made another checkout: %+v", tc.lang, o)
		default:
		}

		// /autorenew on ticks the box of the next checkout screen.
		h.tg.SendText(u, "/autorenew on")
		n = len(h.waitMessages(u.ID, n+2))
		h.press(u, "buy")
		h.press(u, "buy:plan:quarter")
		h.press(u, "buy:pay:card:quarter")
		next := h.waitMessages(u.ID, n+1)[n]
		if next.Keyboard[1][0].Text != text(tc.lang, mBtnSaveCardOn) || next.Keyboard[0][0].URL != ticked.Keyboard[0][0].URL {
			t.Errorf("%s: after /autorenew on the screen is:\n%s", tc.lang, dump([]tgtest.Message{next}))
		}
	}
	if text(langRU, mBtnSaveCardOn) == text(langEN, mBtnSaveCardOn) {
		t.Error("the Russian box is the English one")
	}
}
