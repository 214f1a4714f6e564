package tgtest

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// These tests drive the emulator with go-telegram/bot, the client wgbot
// uses, so they prove the wire formats against real client code.

func newClient(t *testing.T, s *Server, opts ...bot.Option) *bot.Bot {
	t.Helper()
	opts = append([]bot.Option{
		bot.WithServerURL(s.URL()),
		bot.WithErrorsHandler(func(err error) { t.Logf("bot error: %v", err) }),
	}, opts...)
	b, err := bot.New(testToken, opts...)
	if err != nil {
		t.Fatalf("bot.New against the emulator: %v", err)
	}
	return b
}

// startPolling runs b.Start until the test ends.
func startPolling(t *testing.T, b *bot.Bot) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

var confBytes = []byte("[Interface]\nPrivateKey = test\nAddress = 10.8.0.2/32\n")

func TestLongPollingConversation(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	handlerErrs := make(chan error, 10)
	b := newClient(t, s, bot.WithDefaultHandler(func(ctx context.Context, b *bot.Bot, u *models.Update) {
		switch {
		case u.Message != nil && u.Message.Text == "/start":
			_, err := b.SendMessage(ctx, &bot.SendMessageParams{
				ChatID:    u.Message.Chat.ID,
				Text:      "<b>Welcome</b>, " + u.Message.From.FirstName + "!",
				ParseMode: models.ParseModeHTML,
				ReplyMarkup: &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{
					{{Text: "Free trial", CallbackData: "trial"}},
					{{Text: "Help", URL: "https://example.com/help"}},
				}},
			})
			if err == nil {
				_, err = b.SendDocument(ctx, &bot.SendDocumentParams{
					ChatID:   u.Message.Chat.ID,
					Document: &models.InputFileUpload{Filename: "wg0.conf", Data: bytes.NewReader(confBytes)},
					Caption:  "Your config",
				})
			}
			handlerErrs <- err
		case u.CallbackQuery != nil:
			msg := u.CallbackQuery.Message.Message
			_, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: u.CallbackQuery.ID, Text: "Activating"})
			if err == nil {
				// No reply_markup: Telegram removes the keyboard.
				_, err = b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: msg.Chat.ID, MessageID: msg.ID, Text: "Trial activated: " + u.CallbackQuery.Data})
			}
			handlerErrs <- err
		}
	}))
	startPolling(t, b)

	startID := s.SendText(alice, "/start")
	if startID != 1 {
		t.Errorf("first update_id = %d, want 1", startID)
	}
	if err := <-handlerErrs; err != nil {
		t.Fatalf("handler for /start: %v", err)
	}
	msgs, err := s.WaitMessages(ctx, alice.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	welcome, doc := msgs[0], msgs[1]
	// The user's /start is message 1 in the chat; the bot's replies follow.
	if welcome.ID != 2 || doc.ID != 3 {
		t.Errorf("message ids = %d, %d; want 2, 3", welcome.ID, doc.ID)
	}
	if welcome.Text != "Welcome, Alice!" || welcome.ParseMode != "HTML" {
		t.Errorf("welcome text %q parse mode %q", welcome.Text, welcome.ParseMode)
	}
	wantKeyboard := [][]Button{{{Text: "Free trial", CallbackData: "trial"}}, {{Text: "Help", URL: "https://example.com/help"}}}
	if !sameJSON(welcome.Keyboard, wantKeyboard) {
		t.Errorf("keyboard = %+v, want %+v", welcome.Keyboard, wantKeyboard)
	}
	if doc.Method != "sendDocument" || doc.Document == nil || doc.Document.Name != "wg0.conf" || !bytes.Equal(doc.Document.Data, confBytes) || doc.Caption != "Your config" {
		t.Errorf("document message = %+v", doc)
	}
	if welcome.SentAt.IsZero() || doc.SentAt.Before(welcome.SentAt) {
		t.Errorf("SentAt not recorded in order: %v, %v", welcome.SentAt, doc.SentAt)
	}

	if _, err := s.PressButton(alice, welcome.ID, "nope"); err == nil {
		t.Error("PressButton accepted a button that is not on the message")
	}
	press, err := s.PressButton(alice, welcome.ID, "trial")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-handlerErrs; err != nil {
		t.Fatalf("handler for the button: %v", err)
	}
	answer, ok := s.CallbackAnswer(press)
	if !ok || answer.Text != "Activating" {
		t.Errorf("callback answer = %+v, %v", answer, ok)
	}
	edited := s.Messages(alice.ID)[0]
	if edited.Text != "Trial activated: trial" || edited.Keyboard != nil || edited.EditedAt.IsZero() {
		t.Errorf("after edit: text %q keyboard %v edited %v", edited.Text, edited.Keyboard, edited.EditedAt)
	}
	if err := s.Wait(ctx, func() bool { return s.PendingUpdates() == 0 }); err != nil {
		t.Errorf("updates not confirmed by the client: %v", err)
	}
}

// webhookReceiver is the bot's side of a webhook: it refuses requests
// without the right secret with 401, as wgbot must (go-telegram's own
// handler answers 200 either way).
func webhookReceiver(t *testing.T, b *bot.Bot, secret string, hits *atomic.Int32) *httptest.Server {
	t.Helper()
	inner := b.WebhookHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("X-Telegram-Bot-Api-Secret-Token") != secret {
			http.Error(w, "bad secret", http.StatusUnauthorized)
			return
		}
		inner(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWebhookDelivery(t *testing.T) {
	s := newServer(t, WithWebhookRetry(3, 10*time.Millisecond))
	ctx := testContext(t)
	const secret = "s3cret-Token_1"
	b := newClient(t, s, bot.WithWebhookSecretToken(secret), bot.WithDefaultHandler(func(ctx context.Context, b *bot.Bot, u *models.Update) {
		if u.Message != nil {
			_, _ = b.SendMessage(ctx, &bot.SendMessageParams{ChatID: u.Message.Chat.ID, Text: "echo: " + u.Message.Text})
		}
	}))
	var hits atomic.Int32
	receiver := webhookReceiver(t, b, secret, &hits)
	hookCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.StartWebhook(hookCtx) }()
	t.Cleanup(func() { stop(); <-done })

	if ok, err := b.SetWebhook(ctx, &bot.SetWebhookParams{URL: receiver.URL, SecretToken: secret}); err != nil || !ok {
		t.Fatalf("setWebhook = %v, %v", ok, err)
	}
	if url, gotSecret := s.Webhook(); url != receiver.URL || gotSecret != secret {
		t.Errorf("Webhook() = %q, %q", url, gotSecret)
	}
	// While a webhook is set, getUpdates is refused as by Telegram.
	if r := callForm(t, s, "getUpdates", nil); r.Status != http.StatusConflict || !strings.HasPrefix(r.Description, "Conflict: can't use getUpdates method while webhook is active") {
		t.Errorf("getUpdates with a webhook: %d %s", r.Status, r.Raw)
	}

	s.SendText(alice, "hello")
	msgs, err := s.WaitMessages(ctx, alice.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Text != "echo: hello" {
		t.Errorf("reply = %q", msgs[0].Text)
	}

	// With a secret the receiver does not accept, every delivery gets 401:
	// the emulator retries the configured number of times, then drops the
	// update and reports the error in getWebhookInfo.
	if _, err := b.SetWebhook(ctx, &bot.SetWebhookParams{URL: receiver.URL, SecretToken: "wrong"}); err != nil {
		t.Fatal(err)
	}
	before := hits.Load()
	s.SendText(alice, "lost")
	if err := s.Wait(ctx, func() bool { return s.PendingUpdates() == 0 }); err != nil {
		t.Fatalf("update never dropped: %v", err)
	}
	if got := hits.Load() - before; got != 3 {
		t.Errorf("delivery attempts = %d, want 3", got)
	}
	info, err := b.GetWebhookInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.LastErrorMessage != "Wrong response from the webhook: 401 Unauthorized" || info.LastErrorDate == 0 || info.PendingUpdateCount != 0 {
		t.Errorf("webhook info = %+v", info)
	}
	if n := len(s.Messages(alice.ID)); n != 1 {
		t.Errorf("bot sent %d messages, want only the first echo", n)
	}

	if ok, err := b.DeleteWebhook(ctx, &bot.DeleteWebhookParams{}); err != nil || !ok {
		t.Fatalf("deleteWebhook = %v, %v", ok, err)
	}
	if r := callForm(t, s, "getUpdates", nil); !r.OK {
		t.Errorf("getUpdates after deleteWebhook: %s", r.Raw)
	}
}

func TestWebhookReplyInResponse(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	// A bot may answer an update by returning a method call in the webhook
	// response; Telegram executes it.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"method":"sendMessage","chat_id":1001,"text":"inline reply"}`)
	}))
	t.Cleanup(receiver.Close)
	if r := callJSON(t, s, "setWebhook", map[string]any{"url": receiver.URL}); !r.OK || r.Description != "Webhook was set" {
		t.Fatalf("setWebhook: %s", r.Raw)
	}
	s.SendText(alice, "hi")
	msgs, err := s.WaitMessages(ctx, alice.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].Text != "inline reply" {
		t.Errorf("text = %q", msgs[0].Text)
	}
}

func pngImage(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMultipartFilesKeepBytes(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	b := newClient(t, s)
	s.AddUser(alice)

	qr := pngImage(t, 64, 48)
	photo, err := b.SendPhoto(ctx, &bot.SendPhotoParams{
		ChatID:    alice.ID,
		Photo:     &models.InputFileUpload{Filename: "qr.png", Data: bytes.NewReader(qr)},
		Caption:   "Scan *me*",
		ParseMode: models.ParseModeMarkdown,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(photo.Photo) != 1 || photo.Photo[0].Width != 64 || photo.Photo[0].Height != 48 || photo.Photo[0].FileID == "" || photo.Photo[0].FileUniqueID == "" {
		t.Errorf("photo sizes = %+v", photo.Photo)
	}
	if photo.Caption != "Scan me" || len(photo.CaptionEntities) != 1 || photo.CaptionEntities[0].Type != models.MessageEntityTypeBold {
		t.Errorf("caption %q entities %+v", photo.Caption, photo.CaptionEntities)
	}
	doc, err := b.SendDocument(ctx, &bot.SendDocumentParams{
		ChatID:   alice.ID,
		Document: &models.InputFileUpload{Filename: "wg0.conf", Data: bytes.NewReader(confBytes)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Document == nil || doc.Document.FileName != "wg0.conf" || doc.Document.FileSize != int64(len(confBytes)) || doc.Document.MimeType != "text/plain" {
		t.Errorf("document = %+v", doc.Document)
	}

	msgs := s.Messages(alice.ID)
	if len(msgs) != 2 || msgs[0].Photo == nil || !bytes.Equal(msgs[0].Photo.Data, qr) || msgs[0].Caption != "Scan me" {
		t.Fatalf("recorded photo = %+v", msgs)
	}
	if !bytes.Equal(msgs[1].Document.Data, confBytes) || msgs[1].Document.ID != doc.Document.FileID {
		t.Errorf("recorded document = %+v", msgs[1].Document)
	}

	// getFile and the download URL give the same bytes back.
	f, err := b.GetFile(ctx, &bot.GetFileParams{FileID: doc.Document.FileID})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(b.FileDownloadLink(f))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, confBytes) {
		t.Errorf("download: %d %q", resp.StatusCode, got)
	}

	// A file_id sent before can be sent again without uploading.
	again, err := b.SendDocument(ctx, &bot.SendDocumentParams{ChatID: alice.ID, Document: &models.InputFileString{Data: doc.Document.FileID}})
	if err != nil || again.Document.FileUniqueID != doc.Document.FileUniqueID {
		t.Errorf("resend by file_id: %+v, %v", again, err)
	}

	// Telegram refuses bytes that are not an image as a photo.
	_, err = b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: alice.ID, Photo: &models.InputFileUpload{Filename: "x.png", Data: bytes.NewReader(confBytes)}})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "IMAGE_PROCESS_FAILED") {
		t.Errorf("non-image photo: %v", err)
	}
}

func TestTooManyRequestsAndServerErrors(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	b := newClient(t, s)
	s.AddUser(alice)

	s.FailNext("sendMessage", alice.ID, http.StatusTooManyRequests, 7)
	_, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "hi"})
	var tooMany *bot.TooManyRequestsError
	if !errors.As(err, &tooMany) || tooMany.RetryAfter != 7 {
		t.Fatalf("err = %v, want TooManyRequestsError with retry_after 7", err)
	}
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "hi"}); err != nil {
		t.Errorf("the failure was not one-shot: %v", err)
	}

	// The exact wire shape, for clients other than go-telegram.
	s.FailNext("sendmessage", 0, http.StatusTooManyRequests, 3)
	r := callJSON(t, s, "sendMessage", map[string]any{"chat_id": alice.ID, "text": "x"})
	want := `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}`
	if r.Status != http.StatusTooManyRequests || r.Raw != want {
		t.Errorf("429 response = %d %s\nwant %s", r.Status, r.Raw, want)
	}

	// A failure for another chat does not hit this one.
	s.FailNext("sendMessage", 999, http.StatusBadGateway, 0)
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "ok"}); err != nil {
		t.Errorf("failure for chat 999 hit chat %d: %v", alice.ID, err)
	}
	s.FailNext("sendMessage", 0, http.StatusBadGateway, 0)
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "x"}); err == nil || !strings.Contains(err.Error(), "502 Bad Gateway") {
		t.Errorf("502: %v", err)
	}

	var accepted, refused int
	for _, req := range s.Requests() {
		if req.Method != "sendMessage" {
			continue
		}
		if req.StatusCode == http.StatusOK {
			accepted++
		} else {
			refused++
		}
		if req.ChatID != alice.ID || req.At.IsZero() {
			t.Errorf("request = %+v", req)
		}
	}
	if accepted != 2 || refused != 3 {
		t.Errorf("sendMessage accepted %d refused %d, want 2 and 3", accepted, refused)
	}
	if got := len(s.Messages(alice.ID)); got != 2 {
		t.Errorf("%d messages recorded, want only the 2 accepted", got)
	}
}

func TestBlockedUser(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	b := newClient(t, s)
	s.SendText(alice, "/start")
	s.Block(alice.ID)

	_, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "renew?"})
	if !errors.Is(err, bot.ErrorForbidden) || !strings.Contains(err.Error(), "Forbidden: bot was blocked by the user") {
		t.Fatalf("send to a blocked user: %v", err)
	}
	_, err = b.SendDocument(ctx, &bot.SendDocumentParams{ChatID: alice.ID, Document: &models.InputFileUpload{Filename: "a.conf", Data: bytes.NewReader(confBytes)}})
	if !errors.Is(err, bot.ErrorForbidden) {
		t.Errorf("document to a blocked user: %v", err)
	}
	// Telegram tells the bot with a my_chat_member update.
	ups := updatesOf(t, callForm(t, s, "getUpdates", nil))
	if len(ups) != 2 || ups[1].MyChatMember == nil || ups[1].MyChatMember.NewChatMember.Status != "kicked" {
		t.Errorf("updates after Block = %+v", ups)
	}

	s.Unblock(alice.ID)
	if _, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: alice.ID, Text: "welcome back"}); err != nil {
		t.Errorf("after Unblock: %v", err)
	}
	// A chat the bot has never seen does not exist for it.
	_, err = b.SendMessage(ctx, &bot.SendMessageParams{ChatID: 424242, Text: "hi"})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "chat not found") {
		t.Errorf("unknown chat: %v", err)
	}
}

func TestStarsPaymentFlow(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	charges := make(chan string, 1)
	b := newClient(t, s, bot.WithDefaultHandler(func(ctx context.Context, b *bot.Bot, u *models.Update) {
		switch {
		case u.PreCheckoutQuery != nil:
			ok := u.PreCheckoutQuery.InvoicePayload == "plan:30"
			params := &bot.AnswerPreCheckoutQueryParams{PreCheckoutQueryID: u.PreCheckoutQuery.ID, OK: ok}
			if !ok {
				params.ErrorMessage = "Unknown plan"
			}
			_, _ = b.AnswerPreCheckoutQuery(ctx, params)
		case u.Message != nil && u.Message.SuccessfulPayment != nil:
			charges <- u.Message.SuccessfulPayment.TelegramPaymentChargeID
		}
	}))
	startPolling(t, b)
	s.AddUser(alice)

	inv, err := b.SendInvoice(ctx, &bot.SendInvoiceParams{
		ChatID: alice.ID, Title: "30 days", Description: "VPN for 30 days", Payload: "plan:30",
		Currency: "XTR", Prices: []models.LabeledPrice{{Label: "30 days", Amount: 150}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Invoice == nil || inv.Invoice.TotalAmount != 150 || inv.Invoice.Currency != "XTR" {
		t.Errorf("invoice message = %+v", inv.Invoice)
	}
	rec := s.Messages(alice.ID)[0].Invoice
	if rec == nil || rec.Payload != "plan:30" || rec.Total() != 150 || rec.Title != "30 days" {
		t.Errorf("recorded invoice = %+v", rec)
	}
	// Stars invoices take no provider token.
	_, err = b.SendInvoice(ctx, &bot.SendInvoiceParams{
		ChatID: alice.ID, Title: "x", Description: "x", Payload: "x", ProviderToken: "tok",
		Currency: "XTR", Prices: []models.LabeledPrice{{Label: "x", Amount: 1}},
	})
	if !errors.Is(err, bot.ErrorBadRequest) {
		t.Errorf("XTR invoice with a provider token: %v", err)
	}

	good := s.PreCheckout(alice, "XTR", 150, "plan:30")
	bad := s.PreCheckout(alice, "XTR", 150, "plan:999")
	if err := s.Wait(ctx, func() bool {
		_, a := s.PreCheckoutAnswer(good)
		_, b := s.PreCheckoutAnswer(bad)
		return a && b
	}); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.PreCheckoutAnswer(good); !a.OK {
		t.Errorf("answer to a good query = %+v", a)
	}
	if a, _ := s.PreCheckoutAnswer(bad); a.OK || a.ErrorMessage != "Unknown plan" {
		t.Errorf("answer to a bad query = %+v", a)
	}

	s.SuccessfulPayment(alice, "XTR", 150, "plan:30", "stxCHARGE1")
	select {
	case got := <-charges:
		if got != "stxCHARGE1" {
			t.Errorf("charge id seen by the bot = %q", got)
		}
	case <-ctx.Done():
		t.Fatal("the bot never saw the successful payment")
	}

	refund := func(userID int64, charge string) error {
		_, err := b.RefundStarPayment(ctx, &bot.RefundStarPaymentParams{UserID: userID, TelegramPaymentChargeID: charge})
		return err
	}
	if err := refund(alice.ID, "stxCHARGE1"); err != nil {
		t.Fatalf("refund: %v", err)
	}
	if !s.Refunded("stxCHARGE1") {
		t.Error("Refunded = false after a refund")
	}
	if err := refund(alice.ID, "stxCHARGE1"); err == nil || !strings.Contains(err.Error(), "CHARGE_ALREADY_REFUNDED") {
		t.Errorf("second refund: %v", err)
	}
	if err := refund(alice.ID, "stxNOPE"); err == nil || !strings.Contains(err.Error(), "CHARGE_NOT_FOUND") {
		t.Errorf("unknown charge: %v", err)
	}
}

func TestSetMyCommands(t *testing.T) {
	s := newServer(t)
	ctx := testContext(t)
	b := newClient(t, s)
	_, err := b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{{Command: "start", Description: "Start"}, {Command: "buy", Description: "Buy access"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Command{{"start", "Start"}, {"buy", "Buy access"}}
	if got := s.Commands(""); !sameJSON(got, want) {
		t.Errorf("Commands = %+v", got)
	}
	_, err = b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{{Command: "Bad-Name", Description: "x"}}})
	if err == nil || !strings.Contains(err.Error(), "BOT_COMMAND_INVALID") {
		t.Errorf("invalid command name: %v", err)
	}
}
