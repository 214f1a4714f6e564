package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"wgbot/telegram/tgtest"
)

// fakeBot is the bot's side of the emulator, driven by hand: what it sends
// is what the page must show.
type fakeBot struct {
	t      *testing.T
	tg     *tgtest.Server
	api    *bot.Bot
	offset int64
}

func newFakeBot(t *testing.T, tg *tgtest.Server) *fakeBot {
	api, err := bot.New(Token, bot.WithServerURL(tg.URL()), bot.WithSkipGetMe())
	if err != nil {
		t.Fatal(err)
	}
	return &fakeBot{t: t, tg: tg, api: api}
}

// next returns the next update Telegram would deliver to the bot.
func (b *fakeBot) next() models.Update {
	b.t.Helper()
	form := url.Values{"offset": {strconv.FormatInt(b.offset, 10)}, "timeout": {"5"}, "limit": {"1"}}
	resp, err := http.PostForm(b.tg.URL()+"/bot"+Token+"/getUpdates", form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct {
		Result []models.Update `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil || len(reply.Result) == 0 {
		b.t.Fatalf("no update for the bot: %v", err)
	}
	b.offset = reply.Result[0].ID + 1
	return reply.Result[0]
}

type page struct {
	t   *testing.T
	srv *httptest.Server
}

func newPage(t *testing.T) (*page, *fakeBot) {
	tg := tgtest.New(Token)
	t.Cleanup(tg.Close)
	return servePage(t, tg, ""), newFakeBot(t, tg)
}

// servePage serves the page's API for the emulator tg, keeping its users
// in stateFile.
func servePage(t *testing.T, tg *tgtest.Server, stateFile string) *page {
	t.Helper()
	c, err := NewClient(tg, PageInfo{BotName: "test bot", Admins: []int64{1001}}, stateFile)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for pattern, h := range c.Routes() {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &page{t: t, srv: srv}
}

func (p *page) call(method, path string, body any, into any) int {
	p.t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, p.srv.URL+path, r)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			p.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

type transcript struct {
	Messages []messageView `json:"messages"`
	Toasts   []toast       `json:"toasts"`
}

func (p *page) chat(user int64) transcript {
	p.t.Helper()
	var tr transcript
	if code := p.call("GET", "/sandbox/api/chats/"+strconv.FormatInt(user, 10), nil, &tr); code != http.StatusOK {
		p.t.Fatalf("chat: %d", code)
	}
	return tr
}

func tinyPNG(t *testing.T) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The page shows what a user typed and everything the bot sent back, in
// order, with buttons, files and invoices as Telegram would.
func TestClientTranscriptAndFiles(t *testing.T) {
	t.Parallel()
	p, b := newPage(t)
	ctx := context.Background()
	if code := p.call("POST", "/sandbox/api/chats/1001/text", map[string]string{"text": "/start"}, nil); code != http.StatusAccepted {
		t.Fatalf("send: %d", code)
	}
	upd := b.next()
	if upd.Message == nil || upd.Message.Text != "/start" || upd.Message.From.FirstName != "Alice" {
		t.Fatalf("the bot did not get Alice's /start: %+v", upd)
	}
	conf := []byte("[Interface]\nPrivateKey = x\n")
	if _, err := b.api.SendMessage(ctx, &bot.SendMessageParams{ChatID: 1001, Text: "Menu", ReplyMarkup: &models.InlineKeyboardMarkup{
		InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "Trial", CallbackData: "trial"}}, {{Text: "Site", URL: "https://example.com/"}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.api.SendDocument(ctx, &bot.SendDocumentParams{ChatID: 1001, Caption: "your config",
		Document: &models.InputFileUpload{Filename: "wgbot-phone.conf", Data: bytes.NewReader(conf)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.api.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: 1001,
		Photo: &models.InputFileUpload{Filename: "qr.png", Data: bytes.NewReader(tinyPNG(t))}}); err != nil {
		t.Fatal(err)
	}

	tr := p.chat(1001)
	if len(tr.Messages) != 4 || tr.Messages[0].From != "user" || tr.Messages[1].Text != "Menu" {
		t.Fatalf("want /start then the bot's three messages, got %+v", tr.Messages)
	}
	kb := tr.Messages[1].Keyboard
	if len(kb) != 2 || kb[0][0].Data != "trial" || kb[1][0].URL != "https://example.com/" {
		t.Errorf("keyboard: %+v", kb)
	}
	doc := tr.Messages[2].Document
	if doc == nil || doc.Name != "wgbot-phone.conf" || tr.Messages[2].Caption != "your config" {
		t.Fatalf("document: %+v", tr.Messages[2])
	}
	resp, err := http.Get(p.srv.URL + doc.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, conf) || !strings.Contains(resp.Header.Get("Content-Disposition"), `attachment; filename=wgbot-phone.conf`) {
		t.Errorf("download: %q, %q", body, resp.Header.Get("Content-Disposition"))
	}
	photo := tr.Messages[3].Photo
	if photo == nil {
		t.Fatalf("photo: %+v", tr.Messages[3])
	}
	resp, err = http.Get(p.srv.URL + photo.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Content-Disposition") != "" {
		t.Errorf("a photo is shown inline as PNG: %v", resp.Header)
	}
	if code := p.call("GET", "/sandbox/api/chats/1001/messages/99/document", nil, nil); code != http.StatusNotFound {
		t.Errorf("a missing file: %d", code)
	}
	if code := p.call("GET", "/sandbox/api/chats/4242", nil, nil); code != http.StatusNotFound {
		t.Errorf("an unknown user: %d", code)
	}
}

// A button press reaches the bot as a callback query; its answer's text is
// shown once; a button no longer on screen cannot be pressed.
func TestClientButtonsAndToasts(t *testing.T) {
	t.Parallel()
	p, b := newPage(t)
	ctx := context.Background()
	p.call("POST", "/sandbox/api/chats/1002/text", map[string]string{"text": "hi"}, nil)
	b.next()
	sent, err := b.api.SendMessage(ctx, &bot.SendMessageParams{ChatID: 1002, Text: "Menu", ReplyMarkup: &models.InlineKeyboardMarkup{
		InlineKeyboard: [][]models.InlineKeyboardButton{{{Text: "Trial", CallbackData: "trial"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	press := map[string]any{"message_id": sent.ID, "data": "trial"}
	if code := p.call("POST", "/sandbox/api/chats/1002/press", press, nil); code != http.StatusAccepted {
		t.Fatalf("press: %d", code)
	}
	upd := b.next()
	if upd.CallbackQuery == nil || upd.CallbackQuery.Data != "trial" || upd.CallbackQuery.From.ID != 1002 {
		t.Fatalf("the bot did not get Bob's press: %+v", upd)
	}
	if _, err := b.api.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: upd.CallbackQuery.ID,
		Text: "Working on it", ShowAlert: true}); err != nil {
		t.Fatal(err)
	}
	if tr := p.chat(1002); len(tr.Toasts) != 1 || tr.Toasts[0].Text != "Working on it" || !tr.Toasts[0].Alert {
		t.Errorf("want the answer shown once as an alert, got %+v", tr.Toasts)
	}
	if tr := p.chat(1002); len(tr.Toasts) != 0 {
		t.Errorf("an answer was shown twice: %+v", tr.Toasts)
	}
	stale := map[string]any{"message_id": sent.ID, "data": "buy"}
	if code := p.call("POST", "/sandbox/api/chats/1002/press", stale, nil); code != http.StatusConflict {
		t.Errorf("pressing a button that is not on screen: %d, want 409", code)
	}
}

// A Stars invoice is paid as Telegram pays it: a pre-checkout query first,
// the successful payment only after the bot said yes.
func TestClientPaysStarsInvoice(t *testing.T) {
	t.Parallel()
	p, b := newPage(t)
	ctx := context.Background()
	p.call("POST", "/sandbox/api/chats/1001/text", map[string]string{"text": "/buy"}, nil)
	b.next()
	inv, err := b.api.SendInvoice(ctx, &bot.SendInvoiceParams{ChatID: 1001, Title: "VPN for 30 days", Description: "WireGuard",
		Payload: "order-7", Currency: "XTR", Prices: []models.LabeledPrice{{Label: "30 days", Amount: 150}}})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.chat(1001)
	last := tr.Messages[len(tr.Messages)-1]
	if last.Invoice == nil || last.Invoice.Total != 150 || len(last.Keyboard) != 1 || !last.Keyboard[0][0].Pay {
		t.Fatalf("invoice with a Pay button: %+v", last)
	}
	// Telegram shows Stars with a star, never the code XTR.
	if last.Invoice.Amount != "⭐150" || last.Keyboard[0][0].Text != "Pay ⭐150" {
		t.Errorf("a Stars invoice shows %q with the button %q, want ⭐150 and Pay ⭐150", last.Invoice.Amount, last.Keyboard[0][0].Text)
	}
	answered := make(chan error, 1)
	go func() {
		q := b.next().PreCheckoutQuery
		if q == nil || q.InvoicePayload != "order-7" || q.TotalAmount != 150 || q.Currency != "XTR" {
			answered <- io.ErrUnexpectedEOF
			return
		}
		_, err := b.api.AnswerPreCheckoutQuery(ctx, &bot.AnswerPreCheckoutQueryParams{PreCheckoutQueryID: q.ID, OK: true})
		answered <- err
	}()
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	p.call("POST", "/sandbox/api/chats/1001/pay", map[string]int{"message_id": inv.ID}, &res)
	if err := <-answered; err != nil || !res.OK {
		t.Fatalf("pay: %+v, bot: %v", res, err)
	}
	paid := b.next().Message
	if paid == nil || paid.SuccessfulPayment == nil || paid.SuccessfulPayment.InvoicePayload != "order-7" {
		t.Fatalf("no successful payment after the bot said yes: %+v", paid)
	}
	tr = p.chat(1001)
	if n := len(tr.Messages); n < 2 || tr.Messages[n-2].Invoice == nil || !tr.Messages[n-2].Invoice.Paid {
		t.Errorf("the invoice is not shown as paid: %+v", tr.Messages)
	}
	if receipt := tr.Messages[len(tr.Messages)-1]; receipt.From != "user" || receipt.Service != "You paid ⭐150 to test bot for VPN for 30 days" {
		t.Errorf("the payment's service message: %+v", receipt)
	}
	if code := p.call("POST", "/sandbox/api/chats/1001/pay", map[string]int{"message_id": inv.ID}, nil); code != http.StatusConflict {
		t.Errorf("paying an invoice twice: %d, want 409", code)
	}
}

func TestClientUsers(t *testing.T) {
	t.Parallel()
	p, _ := newPage(t)
	var created userView
	if code := p.call("POST", "/sandbox/api/users", map[string]string{"name": "  Carol  "}, &created); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var users []userView
	p.call("GET", "/sandbox/api/users", nil, &users)
	if len(users) != 3 || users[0].Name != "Alice" || !users[0].Admin || users[1].Admin || users[2] != created || created.Name != "Carol" {
		t.Errorf("users: %+v", users)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 33)} {
		if code := p.call("POST", "/sandbox/api/users", map[string]string{"name": bad}, nil); code != http.StatusBadRequest {
			t.Errorf("name %q: %d, want 400", bad, code)
		}
	}
	if code := p.call("POST", "/sandbox/api/chats/1001/text", map[string]string{"text": " "}, nil); code != http.StatusBadRequest {
		t.Errorf("an empty message: %d, want 400", code)
	}
}

// "+ New user" picks the language the user's Telegram app sends: their
// updates carry it as language_code; anything but ru is English.
func TestClientNewUserLanguage(t *testing.T) {
	t.Parallel()
	p, b := newPage(t)
	for _, tt := range []struct{ lang, want string }{{"ru", "ru"}, {"en", "en"}, {"", "en"}, {"de", "en"}} {
		var u userView
		if code := p.call("POST", "/sandbox/api/users", map[string]string{"name": "User " + tt.lang, "lang": tt.lang}, &u); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		if u.Lang != tt.want {
			t.Errorf("lang %q: the user has %q, want %q", tt.lang, u.Lang, tt.want)
		}
		p.call("POST", "/sandbox/api/chats/"+strconv.FormatInt(u.ID, 10)+"/text", map[string]string{"text": "/start"}, nil)
		if upd := b.next(); upd.Message == nil || upd.Message.From.ID != u.ID || upd.Message.From.LanguageCode != tt.want {
			t.Errorf("lang %q: the bot got %+v, want language_code %q", tt.lang, upd.Message, tt.want)
		}
	}
}

// What Telegram's app writes itself follows the user's language.
func TestPayLabelAndReceipt(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{payLabel("en", "⭐150"), "Pay ⭐150"},
		{payLabel("ru", "⭐150"), "Оплатить ⭐150"},
		{receipt("en", "⭐150", "wgbot", "30 days"), "You paid ⭐150 to wgbot for 30 days"},
		{receipt("ru", "⭐150", "wgbot", "30 дней"), "Вы оплатили ⭐150 боту wgbot за «30 дней»"},
		{receipt("ru", "⭐150", "wgbot", ""), "Вы оплатили ⭐150 боту wgbot"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestAmount(t *testing.T) {
	for _, tt := range []struct {
		total    int
		currency string
		want     string
	}{{150, "XTR", "⭐150"}, {1, "XTR", "⭐1"}, {19900, "RUB", "199.00 RUB"}, {5, "USD", "0.05 USD"}, {500, "JPY", "500 JPY"}} {
		if got := Amount(tt.total, tt.currency); got != tt.want {
			t.Errorf("Amount(%d, %s) = %q, want %q", tt.total, tt.currency, got, tt.want)
		}
	}
}

// The users the page added and every chat, the users' messages and the
// bot's in their order, are there again after a restart of the sandbox.
func TestClientKeepsUsersAndChatsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := []tgtest.Option{tgtest.WithChatsFile(filepath.Join(dir, "chats.json")), tgtest.WithUpdateIDFile(filepath.Join(dir, "update-id"))}
	state := filepath.Join(dir, "users.json")
	ctx := context.Background()

	tg := tgtest.New(Token, opts...)
	p, b := servePage(t, tg, state), newFakeBot(t, tg)
	var carol userView
	if code := p.call("POST", "/sandbox/api/users", map[string]string{"name": "Carol", "lang": "ru"}, &carol); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	for i, text := range []string{"/start", "/help"} {
		p.call("POST", "/sandbox/api/chats/"+strconv.FormatInt(carol.ID, 10)+"/text", map[string]string{"text": text}, nil)
		if upd := b.next(); upd.Message == nil || upd.Message.From.LanguageCode != "ru" {
			t.Fatalf("the bot did not get Carol's message in Russian: %+v", upd)
		}
		if _, err := b.api.SendMessage(ctx, &bot.SendMessageParams{ChatID: carol.ID, Text: "ответ " + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	before := p.chat(carol.ID).Messages
	tg.Close()

	tg = tgtest.New(Token, opts...)
	t.Cleanup(tg.Close)
	p, b = servePage(t, tg, state), newFakeBot(t, tg)
	var users []userView
	p.call("GET", "/sandbox/api/users", nil, &users)
	if len(users) != 3 || users[2] != carol {
		t.Fatalf("after the restart the users are %+v, want Alice, Bob and %+v", users, carol)
	}
	after := p.chat(carol.ID).Messages
	var got, want []string
	for _, m := range before {
		want = append(want, m.From+": "+m.Text)
	}
	for _, m := range after {
		got = append(got, m.From+": "+m.Text)
	}
	if strings.Join(got, "|") != "user: /start|bot: ответ 0|user: /help|bot: ответ 1" || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Carol's chat after the restart: %q, before it: %q", got, want)
	}
	var dave userView
	p.call("POST", "/sandbox/api/users", map[string]string{"name": "Dave"}, &dave)
	if dave.ID != carol.ID+1 {
		t.Errorf("the next user after the restart has id %d, want %d", dave.ID, carol.ID+1)
	}
	// The bot's next update continues the ids, and Carol's next message
	// comes after her history.
	p.call("POST", "/sandbox/api/chats/"+strconv.FormatInt(carol.ID, 10)+"/text", map[string]string{"text": "снова"}, nil)
	if upd := b.next(); upd.Message == nil || upd.Message.Text != "снова" || upd.Message.ID != after[len(after)-1].ID+1 {
		t.Errorf("the first message after the restart: %+v", upd.Message)
	}

	if err := os.WriteFile(state, []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(tg, PageInfo{}, state); err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("a garbled users file: %v", err)
	}
}

func TestHideKeys(t *testing.T) {
	in := "[Interface]\nPrivateKey = c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MDA=\nAddress = 10.8.0.1/24\n\n" +
		"# wgbot:peer 1\n[Peer]\nPublicKey = cHVibGljcHVibGljcHVibGljcHVibGljcHVibGljMDA=\npresharedkey=cHNrcHNr\nAllowedIPs = 10.8.0.2/32\n"
	out := string(HideKeys([]byte(in)))
	for _, secret := range []string{"c2VjcmV0", "cHNrcHNr"} {
		if strings.Contains(out, secret) {
			t.Errorf("a key is shown:\n%s", out)
		}
	}
	for _, kept := range []string{"cHVibGlj", "Address = 10.8.0.1/24", "# wgbot:peer 1", "AllowedIPs = 10.8.0.2/32"} {
		if !strings.Contains(out, kept) {
			t.Errorf("%q is missing:\n%s", kept, out)
		}
	}
}

func TestCheckSafe(t *testing.T) {
	tests := []struct {
		token, listen string
		problems      int
	}{
		{"", "127.0.0.1:8088", 0},
		{"", "[::1]:8088", 0},
		{"", "localhost:8088", 0},
		{"", "127.0.0.2:0", 0},
		{Token, "127.0.0.1:8088", 0},
		{"123:abc", "127.0.0.1:8088", 0},
		{"110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "127.0.0.1:8088", 1},
		{" 110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw ", "127.0.0.1:8088", 1},
		{"", "0.0.0.0:8088", 1},
		{"", ":8088", 1},
		{"", "[::]:8088", 1},
		{"", "192.168.1.10:8088", 1},
		{"", "[::ffff:10.0.0.1]:80", 1},
		{"", "example.com:8088", 1},
		{"", "127.0.0.1", 1},
		{"110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "0.0.0.0:8088", 2},
	}
	for _, tt := range tests {
		if got := CheckSafe(tt.token, "HTTP_ADDR", tt.listen); len(got) != tt.problems {
			t.Errorf("CheckSafe(%q, %q) = %q, want %d problem(s)", tt.token, tt.listen, got, tt.problems)
		}
	}
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); err == nil || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("a second sandbox on the same directory: %v, want a refusal naming the first one's pid", err)
	}
	unlock()
	again, err := LockDir(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()
}
