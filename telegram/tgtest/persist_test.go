package tgtest

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// chatView is what a person sees of a chat: every message, the user's and
// the bot's, in order, as text.
func chatView(s *Server, chatID int64) []string {
	type line struct {
		id   int
		text string
	}
	var lines []line
	for _, m := range s.UserMessages(chatID) {
		text := "user: " + m.Text
		if m.Payment != nil {
			text = "user paid " + m.Payment.Currency + " " + m.Payment.ChargeID
		}
		lines = append(lines, line{m.ID, text})
	}
	for _, m := range s.Messages(chatID) {
		text := "bot: " + m.Text + m.Caption
		if m.Deleted {
			text += " (deleted)"
		}
		if !m.EditedAt.IsZero() {
			text += " (edited)"
		}
		for _, row := range m.Keyboard {
			for _, b := range row {
				text += " [" + b.Text + "]"
			}
		}
		if m.Document != nil {
			text += " file " + m.Document.Name + " " + string(m.Document.Data)
		}
		if m.Invoice != nil {
			text += " invoice " + m.Invoice.Title
		}
		lines = append(lines, line{m.ID, text})
	}
	slices.SortFunc(lines, func(a, b line) int { return a.id - b.id })
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out
}

// An emulator with a chats file continues the chats of the one before it:
// the same messages in the same order, edits and deletions kept, buttons
// still pressable, files still downloadable, Stars charges still
// refundable, and the next message id after the last one.
func TestChatsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	chats := filepath.Join(dir, "chats.json")
	ids := filepath.Join(dir, "update-id")
	ctx := testContext(t)

	first := New(testToken, WithChatsFile(chats), WithUpdateIDFile(ids))
	b := newClient(t, first, bot.WithSkipGetMe())
	first.SendText(alice, "/start")
	menu, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "Menu", ReplyMarkup: &models.InlineKeyboardMarkup{
		InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "Trial", CallbackData: "trial"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: alice.ID, MessageID: menu.ID, Text: "Menu, edited",
		ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "Buy", CallbackData: "buy"}}}}}); err != nil {
		t.Fatal(err)
	}
	doc, err := b.SendDocument(ctx, &bot.SendDocumentParams{ChatID: alice.ID, Caption: "config",
		Document: &models.InputFileUpload{Filename: "phone.conf", Data: bytes.NewReader(confBytes)}})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "Working…"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: alice.ID, MessageID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendInvoice(ctx, &bot.SendInvoiceParams{ChatID: alice.ID, Title: "30 days", Description: "VPN", Payload: "order-1",
		Currency: "XTR", Prices: []models.LabeledPrice{{Label: "30 days", Amount: 150}}}); err != nil {
		t.Fatal(err)
	}
	first.SuccessfulPayment(alice, "XTR", 150, "order-1", "stxBEFORE")
	first.SendText(alice, "thanks")
	before := chatView(first, alice.ID)
	lastID := len(before)
	first.Close()

	if len(before) != 7 {
		t.Fatalf("the first emulator's chat has %d messages, want 7: %q", len(before), before)
	}
	second := New(testToken, WithChatsFile(chats), WithUpdateIDFile(ids))
	t.Cleanup(second.Close)
	if after := chatView(second, alice.ID); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the chat changed across the restart:\nbefore %q\nafter  %q", before, after)
	}
	b = newClient(t, second, bot.WithSkipGetMe())
	next, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "Welcome back"})
	if err != nil {
		t.Fatalf("sending to a restored chat: %v", err)
	}
	if next.ID != lastID+1 {
		t.Errorf("the first message after the restart has id %d, want %d", next.ID, lastID+1)
	}
	if _, err := second.PressButton(alice, menu.ID, "buy"); err != nil {
		t.Errorf("a restored message's button: %v", err)
	}
	f, err := b.GetFile(ctx, &bot.GetFileParams{FileID: doc.Document.FileID})
	if err != nil {
		t.Fatalf("getFile of a restored document: %v", err)
	}
	resp, err := http.Get(b.FileDownloadLink(f))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(data, confBytes) {
		t.Errorf("a restored document downloads as %q", data)
	}
	if _, err := b.SendDocument(ctx, &bot.SendDocumentParams{ChatID: alice.ID, Document: &models.InputFileUpload{Filename: "b.conf", Data: strings.NewReader("b")}}); err != nil {
		t.Fatal(err)
	}
	if m := second.Messages(alice.ID); m[len(m)-1].Document.ID == doc.Document.FileID {
		t.Error("a new upload after the restart got a restored file's id")
	}
	if _, err := b.RefundStarPayment(ctx, &bot.RefundStarPaymentParams{UserID: alice.ID, TelegramPaymentChargeID: "stxBEFORE"}); err != nil {
		t.Errorf("refunding a charge made before the restart: %v", err)
	}
}

// Without the option nothing is kept; a chats file that is not one the
// emulator wrote is refused, naming it, rather than silently dropped.
func TestChatsFileRefusesGarbage(t *testing.T) {
	t.Parallel()
	chats := filepath.Join(t.TempDir(), "chats.json")
	s := New(testToken)
	s.SendText(alice, "hi")
	s.Close()
	if _, err := os.Stat(chats); err == nil {
		t.Fatal("a chats file appeared without WithChatsFile")
	}
	if err := os.WriteFile(chats, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHandler(testToken, WithChatsFile(chats)); err == nil || !strings.Contains(err.Error(), chats) {
		t.Errorf("a garbled chats file: %v", err)
	}
}

// The chats file follows each change shortly, not only on Close: an
// emulator that is killed (a sandbox stopped with SIGKILL) loses at most
// its last moment.
func TestChatsFileWrittenWithoutClose(t *testing.T) {
	t.Parallel()
	chats := filepath.Join(t.TempDir(), "chats.json")
	s := New(testToken, WithChatsFile(chats))
	defer s.Close()
	s.SendText(alice, "/start before the kill")
	deadline := time.Now().Add(5 * time.Second)
	for {
		raw, _ := os.ReadFile(chats)
		if bytes.Contains(raw, []byte("/start before the kill")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chats file does not have the message 5 s after it: %q", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	restored := New(testToken) // reads the file as it is now, without the first one closing
	defer restored.Close()
	if err := restored.loadChats(chats); err != nil {
		t.Fatal(err)
	}
	if got := restored.UserMessages(alice.ID); len(got) != 1 || got[0].Text != "/start before the kill" {
		t.Errorf("restored from the file of a running emulator: %+v", got)
	}
}
