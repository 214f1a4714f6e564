package tgtest

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
)

// User is a Telegram user talking to the bot in a private chat, whose id is
// the user's id.
type User struct {
	ID           int64
	FirstName    string
	LastName     string
	Username     string
	LanguageCode string
}

// Message is one message the bot sent, as the user would now see it: edits
// applied, Deleted set once the bot deleted it.
type Message struct {
	ChatID int64
	ID     int
	Method string // the API method that sent it: sendMessage, sendDocument, sendPhoto or sendInvoice

	Text          string // after parse_mode was applied, as the user sees it
	Caption       string // of a document or photo, after parse_mode
	ParseMode     string
	Keyboard      [][]Button // inline keyboard; nil if none
	ReplyKeyboard [][]string // texts of a reply keyboard's buttons; nil if none
	ReplyTo       int        // message replied to; 0 if none
	Document      *File
	Photo         *File
	Invoice       *Invoice

	SentAt   time.Time
	EditedAt time.Time // zero until edited
	Deleted  bool
}

// UserMessage is one message a user sent in their private chat with the
// bot: a text, or the service message of a successful payment.
type UserMessage struct {
	ChatID  int64
	ID      int // shares its sequence with the bot's messages in the chat
	Text    string
	SentAt  time.Time // to the second, as Telegram dates messages
	Payment *Payment  // nil unless it is a successful payment
}

// Payment is a successful payment as its service message tells it.
type Payment struct {
	Currency string
	Total    int
	Payload  string
	ChargeID string
}

// Button is one inline keyboard button; exactly the fields that matter to a
// test are kept.
type Button struct {
	Text         string
	CallbackData string
	URL          string
	Pay          bool
}

// File is an uploaded document or photo with the bytes the bot sent.
type File struct {
	ID       string // file_id
	UniqueID string // file_unique_id
	Name     string
	MIMEType string
	Data     []byte
	Width    int // photos only
	Height   int // photos only
}

// Invoice is what sendInvoice asked the user to pay.
type Invoice struct {
	Title          string
	Description    string
	Payload        string
	ProviderToken  string
	Currency       string
	Prices         []Price
	StartParameter string
	// SubscriptionPeriod is a createInvoiceLink subscription's period in
	// seconds (0: a one-time payment).
	SubscriptionPeriod int
}

// Total is the sum the user is asked to pay, in the currency's smallest unit.
func (i Invoice) Total() int {
	total := 0
	for _, p := range i.Prices {
		total += p.Amount
	}
	return total
}

// Price is one labelled portion of an invoice.
type Price struct {
	Label  string
	Amount int
}

// Request is one API call the bot made, accepted or not. The times of
// accepted sends are what a rate-limit test measures.
type Request struct {
	Method      string
	ChatID      int64 // chat_id when the call had one
	At          time.Time
	StatusCode  int // 200, or the error_code returned
	Description string
}

// CallbackAnswer is the bot's answerCallbackQuery for one button press.
type CallbackAnswer struct {
	Text      string
	ShowAlert bool
	URL       string
	CacheTime int
	At        time.Time
}

// PreCheckoutAnswer is the bot's answerPreCheckoutQuery for one query.
type PreCheckoutAnswer struct {
	OK           bool
	ErrorMessage string
	At           time.Time
}

// Command is one entry the bot registered with setMyCommands.
type Command struct {
	Command     string
	Description string
}

type chatState struct {
	user          User
	lastMessageID int // shared by the user's and the bot's messages, as in Telegram
	sent          []*sentMessage
	byID          map[int]*sentMessage
	userMessages  map[int]*wireMessage
	blocked       bool
}

// sentMessage is the emulator's record of a bot message: the test's view plus
// what is needed to render it on the wire again.
type sentMessage struct {
	msg             Message
	entities        []wireEntity
	captionEntities []wireEntity
	markup          *wireInlineKeyboard
	replyTo         *wireMessage
}

type storedFile struct {
	file File
	path string
}

type queryState struct {
	updateID    int64
	kind        string
	answered    bool
	callback    CallbackAnswer
	preCheckout PreCheckoutAnswer
}

type charge struct {
	userID   int64
	refunded bool
}

type failure struct {
	method     string
	chatID     int64
	code       int
	retryAfter int
}

// Messages returns every message the bot sent to chatID, oldest first.
func (s *Server) Messages(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	out := make([]Message, 0, len(c.sent))
	for _, m := range c.sent {
		out = append(out, m.snapshot())
	}
	return out
}

// UserMessages returns every message the user of chatID sent there,
// oldest first. Ordered by ID with Messages, they are the chat as the user
// sees it.
func (s *Server) UserMessages(chatID int64) []UserMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		return nil
	}
	out := make([]UserMessage, 0, len(c.userMessages))
	for _, m := range c.userMessages {
		um := UserMessage{ChatID: chatID, ID: m.MessageID, Text: m.Text, SentAt: time.Unix(m.Date, 0)}
		if p := m.SuccessfulPayment; p != nil {
			um.Payment = &Payment{Currency: p.Currency, Total: p.TotalAmount, Payload: p.InvoicePayload, ChargeID: p.TelegramPaymentChargeID}
		}
		out = append(out, um)
	}
	slices.SortFunc(out, func(a, b UserMessage) int { return a.ID - b.ID })
	return out
}

// WaitMessages waits until the bot has sent at least n messages to chatID and
// returns them all.
func (s *Server) WaitMessages(ctx context.Context, chatID int64, n int) ([]Message, error) {
	var msgs []Message
	err := s.Wait(ctx, func() bool {
		msgs = s.Messages(chatID)
		return len(msgs) >= n
	})
	return msgs, err
}

// Wait blocks until cond returns true, re-checking it after every change of
// the emulator's state (a request, an injected update, a delivery). cond may
// call the Server's methods; it should depend only on the emulator's state,
// since nothing else wakes Wait.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return context.Canceled
		}
	}
}

// Requests returns every API call made so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// CallbackAnswer returns the bot's answer to the button press injected as
// updateID, and whether it answered.
func (s *Server) CallbackAnswer(updateID int64) (CallbackAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queryByUpd[updateID]
	if q == nil || q.kind != "callback_query" || !q.answered {
		return CallbackAnswer{}, false
	}
	return q.callback, true
}

// PreCheckoutAnswer returns the bot's answer to the pre-checkout query
// injected as updateID, and whether it answered.
func (s *Server) PreCheckoutAnswer(updateID int64) (PreCheckoutAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queryByUpd[updateID]
	if q == nil || q.kind != "pre_checkout_query" || !q.answered {
		return PreCheckoutAnswer{}, false
	}
	return q.preCheckout, true
}

// Refunded reports whether the bot refunded the Stars payment chargeID.
func (s *Server) Refunded(chargeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.charges[chargeID]
	return c != nil && c.refunded
}

// Commands returns the command list the bot set for the default scope and
// languageCode ("" for all languages).
func (s *Server) Commands(languageCode string) []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands[commandsKey("default", 0, languageCode)])
}

// PendingUpdates is the number of updates not yet confirmed by getUpdates or
// delivered to the webhook.
func (s *Server) PendingUpdates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Webhook returns the webhook URL and secret token the bot set, or empty
// strings while it uses long polling.
func (s *Server) Webhook() (url, secretToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook.url, s.webhook.secret
}

func commandsKey(scope string, chatID int64, lang string) string {
	return scope + "/" + strconv.FormatInt(chatID, 10) + "/" + strings.ToLower(lang)
}

func (m *sentMessage) snapshot() Message {
	out := m.msg
	out.Keyboard = keyboardView(m.markup)
	out.ReplyKeyboard = cloneRows(m.msg.ReplyKeyboard)
	if m.msg.Document != nil {
		f := *m.msg.Document
		out.Document = &f
	}
	if m.msg.Photo != nil {
		f := *m.msg.Photo
		out.Photo = &f
	}
	if m.msg.Invoice != nil {
		inv := *m.msg.Invoice
		inv.Prices = slices.Clone(inv.Prices)
		out.Invoice = &inv
	}
	return out
}

func keyboardView(k *wireInlineKeyboard) [][]Button {
	if k == nil {
		return nil
	}
	rows := make([][]Button, 0, len(k.InlineKeyboard))
	for _, row := range k.InlineKeyboard {
		r := make([]Button, 0, len(row))
		for _, b := range row {
			btn := Button{Text: b.Text, URL: b.URL, Pay: b.Pay}
			if b.CallbackData != nil {
				btn.CallbackData = *b.CallbackData
			}
			r = append(r, btn)
		}
		rows = append(rows, r)
	}
	return rows
}

func cloneRows(rows [][]string) [][]string {
	if rows == nil {
		return nil
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = slices.Clone(r)
	}
	return out
}

// record logs one API call; called by invoke for every method.
func (s *Server) record(method string, p params, apiErr *apiError) {
	chatID, _ := p.int64("chat_id")
	req := Request{Method: method, ChatID: chatID, At: time.Now(), StatusCode: 200}
	if apiErr != nil {
		req.StatusCode, req.Description = apiErr.code, apiErr.description
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.notifyLocked()
	s.mu.Unlock()
}
