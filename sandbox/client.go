package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"wgbot/telegram/tgtest"
)

//go:embed static/index.html
var static embed.FS

// Client is the sandbox's Telegram app: a web page (one static file) and the
// small JSON API it polls. Each simulated user's actions are injected into
// the Bot API emulator as the updates Telegram would send, and the page
// shows what the bot sent back, as the emulator recorded it.
//
// The chats themselves are the emulator's (see tgtest.WithChatsFile); the
// users the page made are kept in the client's own state file, so both
// survive a restart of the sandbox.
type Client struct {
	tg        *tgtest.Server
	page      PageInfo
	stateFile string

	mu       sync.Mutex
	users    []tgtest.User
	presses  map[int64][]press      // button presses whose answer is not shown yet
	paying   map[int64]map[int]bool // Stars invoices being paid, by chat and message
	nextUser int64
}

// PageInfo is what the page shows about the sandbox around the chat.
type PageInfo struct {
	BotName      string  `json:"bot_name"`
	Admins       []int64 `json:"admins"`
	WGConfigPath string  `json:"wg_config_path"`
	VarDir       string  `json:"var_dir"`
	Database     string  `json:"database"` // described, never the password
}

type press struct {
	updateID int64
	at       time.Time
}

// firstUserID is the first simulated user's Telegram id; later ones count up.
const firstUserID = 1001

// maxUsers bounds how many users the page may create.
const maxUsers = 100

// NewClient returns the client with the users stateFile keeps, or, the
// first time, two: Alice and Bob. The users the page adds are written to
// stateFile; an empty stateFile keeps nothing.
func NewClient(tg *tgtest.Server, page PageInfo, stateFile string) (*Client, error) {
	c := &Client{tg: tg, page: page, stateFile: stateFile, presses: map[int64][]press{},
		paying: map[int64]map[int]bool{}, nextUser: firstUserID}
	saved, err := loadUsers(stateFile)
	if err != nil {
		return nil, err
	}
	if len(saved.Users) > 0 {
		c.users, c.nextUser = saved.Users, saved.NextUser
		return c, nil
	}
	c.addUserLocked("Alice", "en")
	c.addUserLocked("Bob", "en")
	return c, nil
}

// savedUsers is the client's state file.
type savedUsers struct {
	Users    []tgtest.User `json:"users"`
	NextUser int64         `json:"next_user"`
}

func loadUsers(path string) (savedUsers, error) {
	var saved savedUsers
	if path == "" {
		return saved, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return saved, nil
	}
	if err == nil {
		err = json.Unmarshal(raw, &saved)
	}
	if err == nil && len(saved.Users) > 0 && saved.NextUser <= saved.Users[len(saved.Users)-1].ID {
		err = errors.New("next_user is not past the last user")
	}
	if err != nil {
		return saved, fmt.Errorf("the sandbox page's users in %s: %v (remove the file to start again with Alice and Bob)", path, err)
	}
	return saved, nil
}

// saveUsersLocked writes the users to the state file, whole or not at all.
func (c *Client) saveUsersLocked() error {
	if c.stateFile == "" {
		return nil
	}
	data, err := json.Marshal(savedUsers{Users: c.users, NextUser: c.nextUser})
	if err != nil {
		return err
	}
	tmp := c.stateFile + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.stateFile)
}

// Routes are the page and its API, by ServeMux pattern.
func (c *Client) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /{$}":                                           http.HandlerFunc(c.index),
		"GET /sandbox/api/info":                              http.HandlerFunc(c.info),
		"GET /sandbox/api/users":                             http.HandlerFunc(c.listUsers),
		"POST /sandbox/api/users":                            http.HandlerFunc(c.createUser),
		"GET /sandbox/api/chats/{user}":                      http.HandlerFunc(c.chat),
		"POST /sandbox/api/chats/{user}/text":                http.HandlerFunc(c.sendText),
		"POST /sandbox/api/chats/{user}/press":               http.HandlerFunc(c.pressButton),
		"POST /sandbox/api/chats/{user}/pay":                 http.HandlerFunc(c.payInvoice),
		"GET /sandbox/api/chats/{user}/messages/{id}/{kind}": http.HandlerFunc(c.file),
		"GET /sandbox/api/wg0.conf":                          http.HandlerFunc(c.serverConfig),
	}
}

func (c *Client) index(w http.ResponseWriter, r *http.Request) {
	page, err := static.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(page)
}

func (c *Client) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.page)
}

type userView struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Lang  string `json:"lang"`
	Admin bool   `json:"admin"`
}

func (c *Client) listUsers(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	users := slices.Clone(c.users)
	c.mu.Unlock()
	out := make([]userView, 0, len(users))
	for _, u := range users {
		out = append(out, userView{ID: u.ID, Name: u.FirstName, Lang: u.LanguageCode, Admin: slices.Contains(c.page.Admins, u.ID)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Client) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
		Lang string `json:"lang"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || utf8.RuneCountInString(name) > 32 {
		writeError(w, http.StatusBadRequest, "a name has 1 to 32 characters")
		return
	}
	if req.Lang != "ru" {
		req.Lang = "en"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.users) >= maxUsers {
		writeError(w, http.StatusConflict, fmt.Sprintf("the sandbox has %d users already", maxUsers))
		return
	}
	u := c.addUserLocked(name, req.Lang)
	if err := c.saveUsersLocked(); err != nil {
		c.users, c.nextUser = c.users[:len(c.users)-1], u.ID
		writeError(w, http.StatusInternalServerError, "keep the new user: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, userView{ID: u.ID, Name: u.FirstName, Lang: u.LanguageCode})
}

func (c *Client) addUserLocked(name, lang string) tgtest.User {
	u := tgtest.User{ID: c.nextUser, FirstName: name, LanguageCode: lang, Username: usernameOf(name, c.nextUser)}
	c.nextUser++
	c.users = append(c.users, u)
	return u
}

// usernameOf makes a Telegram-style username: letters, digits and _.
func usernameOf(name string, id int64) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	if b.Len() < 3 {
		return "user" + strconv.FormatInt(id, 10)
	}
	return b.String()
}

// user finds the simulated user named by the {user} path value.
func (c *Client) user(w http.ResponseWriter, r *http.Request) (tgtest.User, bool) {
	id, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range c.users {
		if err == nil && u.ID == id {
			return u, true
		}
	}
	writeError(w, http.StatusNotFound, "no such user")
	return tgtest.User{}, false
}

// userRequest is the user a request names and its JSON body, read into
// req; false once it has answered with the error.
func (c *Client) userRequest(w http.ResponseWriter, r *http.Request, req any) (tgtest.User, bool) {
	u, ok := c.user(w, r)
	return u, ok && readJSON(w, r, req)
}

// messageView is one message in the transcript, from the bot or the user.
type messageView struct {
	ID       int            `json:"id"`   // shared by the user's and the bot's messages, in order
	From     string         `json:"from"` // "bot" or "user"
	Text     string         `json:"text,omitempty"`
	Caption  string         `json:"caption,omitempty"`
	Service  string         `json:"service,omitempty"` // a service line, such as a payment's
	Time     time.Time      `json:"time"`
	Edited   bool           `json:"edited,omitempty"`
	Keyboard [][]buttonView `json:"keyboard,omitempty"`
	Document *fileView      `json:"document,omitempty"`
	Photo    *fileView      `json:"photo,omitempty"`
	Invoice  *invoiceView   `json:"invoice,omitempty"`
}

type buttonView struct {
	Text string `json:"text"`
	Data string `json:"data,omitempty"` // callback data: pressing sends it to the bot
	URL  string `json:"url,omitempty"`  // a link: opened by the browser
	Pay  bool   `json:"pay,omitempty"`  // pays the invoice above it
}

type fileView struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	URL    string `json:"url"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}

type invoiceView struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Total       int    `json:"total"`
	Currency    string `json:"currency"`
	Amount      string `json:"amount"` // as Telegram shows it: ⭐150 for Stars
	Paid        bool   `json:"paid"`
}

// toast is the bot's answer to a button press when it has text: Telegram
// shows it over the chat, or as an alert.
type toast struct {
	Text  string `json:"text"`
	Alert bool   `json:"alert"`
}

// Amount is a price as Telegram shows it: Stars (XTR) with a star and no
// fraction, other currencies in their major unit with the code.
func Amount(total int, currency string) string {
	switch currency {
	case "XTR":
		return "⭐" + strconv.Itoa(total)
	case "JPY", "KRW", "VND", "CLP", "ISK", "UGX":
		return strconv.Itoa(total) + " " + currency
	}
	return fmt.Sprintf("%d.%02d %s", total/100, total%100, currency)
}

// payLabel and receipt are what Telegram's app itself writes, in the
// user's language: the Pay button it draws under an invoice and the
// service line after a payment.
func payLabel(lang, amount string) string {
	if lang == "ru" {
		return "Оплатить " + amount
	}
	return "Pay " + amount
}

func receipt(lang, amount, bot, title string) string {
	if lang == "ru" {
		if title == "" {
			return fmt.Sprintf("Вы оплатили %s боту %s", amount, bot)
		}
		return fmt.Sprintf("Вы оплатили %s боту %s за «%s»", amount, bot, title)
	}
	if title == "" {
		return fmt.Sprintf("You paid %s to %s", amount, bot)
	}
	return fmt.Sprintf("You paid %s to %s for %s", amount, bot, title)
}

// chat returns the whole transcript of a user's chat with the bot, and the
// answers to their button presses not shown yet.
func (c *Client) chat(w http.ResponseWriter, r *http.Request) {
	u, ok := c.user(w, r)
	if !ok {
		return
	}
	base := "/sandbox/api/chats/" + strconv.FormatInt(u.ID, 10) + "/messages/"
	sent := c.tg.Messages(u.ID)
	paid, titles := map[string]bool{}, map[string]string{}
	for _, m := range sent {
		if m.Invoice != nil {
			titles[m.Invoice.Payload] = m.Invoice.Title
		}
	}
	var msgs []messageView
	for _, m := range c.tg.UserMessages(u.ID) {
		v := messageView{ID: m.ID, From: "user", Text: m.Text, Time: m.SentAt}
		if p := m.Payment; p != nil {
			paid[p.Payload] = true
			v.Service = receipt(u.LanguageCode, Amount(p.Total, p.Currency), c.page.BotName, titles[p.Payload])
		}
		msgs = append(msgs, v)
	}
	for _, m := range sent {
		if m.Deleted {
			continue
		}
		v := messageView{ID: m.ID, From: "bot", Text: m.Text, Caption: m.Caption, Time: m.SentAt, Edited: !m.EditedAt.IsZero()}
		for _, row := range m.Keyboard {
			var out []buttonView
			for _, b := range row {
				out = append(out, buttonView{Text: b.Text, Data: b.CallbackData, URL: b.URL, Pay: b.Pay})
			}
			v.Keyboard = append(v.Keyboard, out)
		}
		if d := m.Document; d != nil {
			v.Document = &fileView{Name: d.Name, Size: len(d.Data), URL: base + strconv.Itoa(m.ID) + "/document"}
		}
		if p := m.Photo; p != nil {
			v.Photo = &fileView{Name: p.Name, Size: len(p.Data), URL: base + strconv.Itoa(m.ID) + "/photo", Width: p.Width, Height: p.Height}
		}
		if inv := m.Invoice; inv != nil {
			amount := Amount(inv.Total(), inv.Currency)
			v.Invoice = &invoiceView{Title: inv.Title, Description: inv.Description, Total: inv.Total(), Currency: inv.Currency,
				Amount: amount, Paid: paid[inv.Payload]}
			if v.Keyboard == nil {
				// Telegram draws the Pay button itself when the bot sent none.
				v.Keyboard = [][]buttonView{{{Text: payLabel(u.LanguageCode, amount), Pay: true}}}
			}
		}
		msgs = append(msgs, v)
	}
	// One sequence of ids runs through the user's and the bot's messages.
	slices.SortFunc(msgs, func(a, b messageView) int { return a.ID - b.ID })
	writeJSON(w, http.StatusOK, struct {
		Messages []messageView `json:"messages"`
		Toasts   []toast       `json:"toasts"`
	}{Messages: msgs, Toasts: c.takeToasts(u.ID)})
}

// takeToasts returns the answered presses' texts once each; presses the
// bot never answered are forgotten after a minute.
func (c *Client) takeToasts(userID int64) []toast {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []toast{}
	var waiting []press
	for _, p := range c.presses[userID] {
		a, answered := c.tg.CallbackAnswer(p.updateID)
		switch {
		case answered && a.Text != "":
			out = append(out, toast{Text: a.Text, Alert: a.ShowAlert})
		case !answered && time.Since(p.at) < time.Minute:
			waiting = append(waiting, p)
		}
	}
	c.presses[userID] = waiting
	return out
}

// maxText is Telegram's limit on a message's length, in characters.
const maxText = 4096

func (c *Client) sendText(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text string `json:"text"`
	}
	u, ok := c.userRequest(w, r, &req)
	if !ok {
		return
	}
	text := strings.TrimSpace(req.Text)
	if text == "" || utf8.RuneCountInString(text) > maxText {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("a message has 1 to %d characters", maxText))
		return
	}
	id := c.tg.SendText(u, text)
	writeJSON(w, http.StatusAccepted, map[string]int64{"update_id": id})
}

func (c *Client) pressButton(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MessageID int    `json:"message_id"`
		Data      string `json:"data"`
	}
	u, ok := c.userRequest(w, r, &req)
	if !ok {
		return
	}
	id, err := c.tg.PressButton(u, req.MessageID, req.Data)
	if err != nil {
		// The message changed under the user's finger: the page redraws.
		writeError(w, http.StatusConflict, "that button is no longer on screen")
		return
	}
	c.mu.Lock()
	c.presses[u.ID] = append(c.presses[u.ID], press{updateID: id, at: time.Now()})
	c.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]int64{"update_id": id})
}

// preCheckoutWait is how long Telegram waits for the bot to answer a
// pre-checkout query before it gives up on the payment.
const preCheckoutWait = 10 * time.Second

// payInvoice pays a Telegram Stars invoice the way Telegram does: it asks
// the bot with a pre-checkout query and, once the bot says yes, sends the
// successful payment message.
func (c *Client) payInvoice(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MessageID int `json:"message_id"`
	}
	u, ok := c.userRequest(w, r, &req)
	if !ok {
		return
	}
	m, ok := c.message(u.ID, req.MessageID)
	if !ok || m.Invoice == nil {
		writeError(w, http.StatusNotFound, "no such invoice")
		return
	}
	if !c.startPaying(u.ID, m) {
		writeError(w, http.StatusConflict, "this invoice is paid already")
		return
	}
	defer c.donePaying(u.ID, m.ID)
	inv := m.Invoice
	queryID := c.tg.PreCheckout(u, inv.Currency, inv.Total(), inv.Payload)
	ctx, cancel := context.WithTimeout(r.Context(), preCheckoutWait)
	defer cancel()
	var answer tgtest.PreCheckoutAnswer
	err := c.tg.Wait(ctx, func() bool {
		var answered bool
		answer, answered = c.tg.PreCheckoutAnswer(queryID)
		return answered
	})
	switch {
	case err != nil:
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "The bot did not confirm the payment in time; no Stars were taken."})
		return
	case !answer.OK:
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": answer.ErrorMessage})
		return
	}
	c.tg.SuccessfulPayment(u, inv.Currency, inv.Total(), inv.Payload, "")
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// startPaying claims the invoice m for one payment: false if it is paid
// (the chat has its successful payment) or being paid.
func (c *Client) startPaying(userID int64, m tgtest.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paying[userID][m.ID] {
		return false
	}
	for _, um := range c.tg.UserMessages(userID) {
		if um.Payment != nil && um.Payment.Payload == m.Invoice.Payload {
			return false
		}
	}
	if c.paying[userID] == nil {
		c.paying[userID] = map[int]bool{}
	}
	c.paying[userID][m.ID] = true
	return true
}

func (c *Client) donePaying(userID int64, messageID int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.paying[userID], messageID)
}

func (c *Client) message(chatID int64, id int) (tgtest.Message, bool) {
	for _, m := range c.tg.Messages(chatID) {
		if m.ID == id && !m.Deleted {
			return m, true
		}
	}
	return tgtest.Message{}, false
}

// file serves a document (as a download) or a photo the bot sent.
func (c *Client) file(w http.ResponseWriter, r *http.Request) {
	u, ok := c.user(w, r)
	if !ok {
		return
	}
	id, _ := strconv.Atoi(r.PathValue("id"))
	m, ok := c.message(u.ID, id)
	var f *tgtest.File
	if ok {
		switch r.PathValue("kind") {
		case "document":
			f = m.Document
		case "photo":
			f = m.Photo
		}
	}
	if f == nil {
		writeError(w, http.StatusNotFound, "no such file")
		return
	}
	ctype := f.MIMEType
	if ctype == "" {
		ctype = http.DetectContentType(f.Data)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if m.Document == f {
		name := f.Name
		if name == "" {
			name = "document"
		}
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	}
	w.Write(f.Data)
}

// serverConfig shows the sandbox's wg0.conf, with key values hidden: the
// page is for watching peers come and go.
func (c *Client) serverConfig(w http.ResponseWriter, r *http.Request) {
	data, err := os.ReadFile(c.page.WGConfigPath)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(HideKeys(data))
}

// HideKeys replaces the values of PrivateKey and PresharedKey lines.
func HideKeys(conf []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(conf))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		key, _, found := strings.Cut(line, "=")
		switch k := strings.TrimSpace(key); {
		case found && (strings.EqualFold(k, "PrivateKey") || strings.EqualFold(k, "PresharedKey")):
			out.WriteString(k + " = (hidden)\n")
		default:
			out.WriteString(line + "\n")
		}
	}
	return out.Bytes()
}

// maxRequest bounds the API's request bodies; they are a few bytes.
const maxRequest = 64 << 10

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request too large")
			return false
		}
		writeError(w, http.StatusBadRequest, "want a JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, map[string]string{"error": text})
}
