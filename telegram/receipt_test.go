package telegram

import (
	"context"
	"strings"
	"testing"

	"wgbot"
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
