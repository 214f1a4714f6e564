package tgtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
)

// queuedUpdate is one update waiting for getUpdates or the webhook.
type queuedUpdate struct {
	seq        int64 // unique per queue entry; a redelivery repeats id, not seq
	id         int64
	kind       string // "message", "callback_query", ...: the allowed_updates name
	body       []byte
	redelivery bool
	handedOut  bool
}

type webhookState struct {
	url            string
	secret         string
	maxConnections int
	failures       int // consecutive failed attempts for the update at the head
	lastErrorDate  int64
	lastErrorMsg   string
}

// enqueueLocked assigns the next update_id, lets build fill in the update and
// queues it. Deterministic ids: the first update is 1, then 2, 3, ...
// (with WithUpdateIDFile, continuing from the previous emulator).
func (s *Server) enqueueLocked(kind string, build func(u *wireUpdate)) int64 {
	s.reserveUpdateIDsLocked()
	u := wireUpdate{UpdateID: s.nextUpdateID}
	s.nextUpdateID++
	build(&u)
	body, err := json.Marshal(u)
	if err != nil {
		panic("tgtest: marshal update: " + err.Error())
	}
	s.nextSeq++
	q := queuedUpdate{seq: s.nextSeq, id: u.UpdateID, kind: kind, body: body}
	s.queue = append(s.queue, q)
	s.sentUpdates[q.id] = q
	s.notifyLocked()
	return q.id
}

// chatLocked returns the private chat with user, creating it on first
// contact and keeping the user's latest profile.
func (s *Server) chatLocked(user User) *chatState {
	c := s.chats[user.ID]
	if c == nil {
		c = &chatState{byID: map[int]*sentMessage{}, userMessages: map[int]*wireMessage{}}
		s.chats[user.ID] = c
	}
	if user.FirstName == "" {
		user.FirstName = "User " + strconv.FormatInt(user.ID, 10)
	}
	c.user = user
	return c
}

func (c *chatState) wireUser() wireUser {
	return wireUser{ID: c.user.ID, FirstName: c.user.FirstName, LastName: c.user.LastName, Username: c.user.Username, LanguageCode: c.user.LanguageCode}
}

func (c *chatState) wireChat() wireChat {
	return wireChat{ID: c.user.ID, Type: "private", FirstName: c.user.FirstName, LastName: c.user.LastName, Username: c.user.Username}
}

// userMessageLocked creates a message from the user in their private chat.
func (s *Server) userMessageLocked(c *chatState) *wireMessage {
	c.lastMessageID++
	from := c.wireUser()
	m := &wireMessage{MessageID: c.lastMessageID, From: &from, Date: time.Now().Unix(), Chat: c.wireChat()}
	c.userMessages[m.MessageID] = m
	return m
}

// AddUser makes user known to the bot, as if they had opened it earlier,
// without sending an update. Telegram refuses sends to a chat the bot has
// never seen ("chat not found"), and so does the emulator.
func (s *Server) AddUser(user User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chatLocked(user)
	s.notifyLocked()
}

// commandPattern finds bot commands the way Telegram marks them: a slash at
// the start or after a non-word character, up to 32 command characters, and
// an optional @botusername.
var commandPattern = regexp.MustCompile(`(?:^|[^\w/])(/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?)`)

func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

func commandEntities(text string) []wireEntity {
	var ents []wireEntity
	for _, m := range commandPattern.FindAllStringSubmatchIndex(text, -1) {
		start, end := m[2], m[3]
		ents = append(ents, wireEntity{Type: "bot_command", Offset: utf16Len(text[:start]), Length: utf16Len(text[start:end])})
	}
	return ents
}

// SendText injects a text message from user in their private chat and
// returns its update_id. Commands get bot_command entities, as Telegram
// adds them.
func (s *Server) SendText(user User, text string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatLocked(user)
	m := s.userMessageLocked(c)
	m.Text = text
	m.Entities = commandEntities(text)
	return s.enqueueLocked("message", func(u *wireUpdate) { u.Message = m })
}

// PressButton injects user pressing the inline button with callback data
// data under the bot's message messageID, and returns the update_id. It
// fails if no such button is on screen, since a user could not press it.
func (s *Server) PressButton(user User, messageID int, data string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[user.ID]
	if c == nil || c.byID[messageID] == nil || c.byID[messageID].msg.Deleted {
		return 0, fmt.Errorf("tgtest: chat %d has no message %d from the bot", user.ID, messageID)
	}
	sm := c.byID[messageID]
	if !hasCallbackButton(sm.markup, data) {
		return 0, fmt.Errorf("tgtest: message %d in chat %d has no button with callback_data %q", messageID, user.ID, data)
	}
	c = s.chatLocked(user)
	q := s.newQueryLocked("callback_query")
	msg := s.wireMessageLocked(c, sm)
	cq := &wireCallbackQuery{
		ID:           q.id,
		From:         c.wireUser(),
		Message:      &msg,
		ChatInstance: strconv.FormatInt(c.user.ID^s.bot.ID, 10),
		Data:         data,
	}
	id := s.enqueueLocked("callback_query", func(u *wireUpdate) { u.CallbackQuery = cq })
	q.state.updateID = id
	s.queryByUpd[id] = q.state
	return id, nil
}

func hasCallbackButton(k *wireInlineKeyboard, data string) bool {
	if k == nil {
		return false
	}
	for _, row := range k.InlineKeyboard {
		for _, b := range row {
			if b.CallbackData != nil && *b.CallbackData == data {
				return true
			}
		}
	}
	return false
}

type newQuery struct {
	id    string
	state *queryState
}

// newQueryLocked makes a query id shaped like Telegram's (a large decimal
// number), deterministic for a given sequence of calls.
func (s *Server) newQueryLocked(kind string) newQuery {
	s.nextQuery++
	id := strconv.FormatInt(s.bot.ID, 10) + fmt.Sprintf("%08d", s.nextQuery)
	st := &queryState{kind: kind}
	s.queries[id] = st
	return newQuery{id: id, state: st}
}

// PreCheckout injects the pre_checkout_query Telegram sends when user
// confirms paying an invoice, and returns its update_id; PreCheckoutAnswer
// tells what the bot answered.
func (s *Server) PreCheckout(user User, currency string, total int, payload string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatLocked(user)
	q := s.newQueryLocked("pre_checkout_query")
	pcq := &wirePreCheckoutQuery{ID: q.id, From: c.wireUser(), Currency: currency, TotalAmount: total, InvoicePayload: payload}
	id := s.enqueueLocked("pre_checkout_query", func(u *wireUpdate) { u.PreCheckoutQuery = pcq })
	q.state.updateID = id
	s.queryByUpd[id] = q.state
	return id
}

// SuccessfulPayment injects the service message Telegram sends after a
// payment went through and returns its update_id. The charge can then be
// refunded once with refundStarPayment. An empty chargeID gets a
// deterministic one derived from the update_id.
func (s *Server) SuccessfulPayment(user User, currency string, total int, payload, chargeID string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chatLocked(user)
	if chargeID == "" {
		chargeID = "stxtgtest" + strconv.FormatInt(s.nextUpdateID, 10)
	}
	s.charges[chargeID] = &charge{userID: user.ID}
	m := s.userMessageLocked(c)
	m.SuccessfulPayment = &wireSuccessfulPayment{
		Currency:                currency,
		TotalAmount:             total,
		InvoicePayload:          payload,
		TelegramPaymentChargeID: chargeID,
	}
	return s.enqueueLocked("message", func(u *wireUpdate) { u.Message = m })
}

// Redeliver queues the update updateID again with the same update_id, as
// Telegram does when it did not see the update confirmed (a bot that
// crashed after handling it, a webhook that answered too late). It is
// delivered even though its update_id is below the bot's offset.
func (s *Server) Redeliver(updateID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.sentUpdates[updateID]
	if !ok {
		return fmt.Errorf("tgtest: no update %d was sent", updateID)
	}
	s.nextSeq++
	q.seq, q.redelivery, q.handedOut = s.nextSeq, true, false
	s.queue = append(s.queue, q)
	s.notifyLocked()
	return nil
}

// Block makes every later send to chatID fail with 403 "Forbidden: bot was
// blocked by the user", and sends the bot the my_chat_member update
// Telegram sends when a user blocks it.
func (s *Server) Block(chatID int64) { s.setBlocked(chatID, true) }

// Unblock undoes Block (the user restarted the bot), again with the
// my_chat_member update Telegram sends.
func (s *Server) Unblock(chatID int64) { s.setBlocked(chatID, false) }

func (s *Server) setBlocked(chatID int64, blocked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[chatID]
	if c == nil {
		c = s.chatLocked(User{ID: chatID})
	}
	if c.blocked == blocked {
		return
	}
	c.blocked = blocked
	bot := wireUser{ID: s.bot.ID, IsBot: true, FirstName: s.bot.FirstName, Username: s.bot.Username}
	member := wireChatMember{User: bot, Status: "member"}
	var zero int64
	kicked := wireChatMember{User: bot, Status: "kicked", UntilDate: &zero}
	upd := &wireChatMemberUpdated{Chat: c.wireChat(), From: c.wireUser(), Date: time.Now().Unix(), OldChatMember: member, NewChatMember: kicked}
	if !blocked {
		upd.OldChatMember, upd.NewChatMember = kicked, member
	}
	s.enqueueLocked("my_chat_member", func(u *wireUpdate) { u.MyChatMember = upd })
}

// FailNext makes the next call of method (for chatID, or any chat when
// chatID is 0) fail with code, with parameters.retry_after set for 429.
// Calls queue up: two FailNext for a method fail its next two calls.
func (s *Server) FailNext(method string, chatID int64, code int, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, name := s.handler(method); name != "" {
		method = name
	}
	s.failures = append(s.failures, failure{method: method, chatID: chatID, code: code, retryAfter: retryAfter})
}

func (s *Server) takeFailure(method string, p params) *apiError {
	chatID, _ := p.int64("chat_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.failures {
		if f.method == method && (f.chatID == 0 || f.chatID == chatID) {
			s.failures = slices.Delete(s.failures, i, i+1)
			return errorFor(f.code, f.retryAfter)
		}
	}
	return nil
}

// allowedLocked reports whether the bot's allowed_updates let kind through.
// Telegram's default leaves out chat_member and reaction updates, which the
// emulator never produces.
func (s *Server) allowedLocked(kind string) bool {
	return len(s.allowed) == 0 || slices.Contains(s.allowed, kind)
}

func (s *Server) getUpdates(ctx context.Context, p params) (any, *apiError) {
	offset, apiErr := p.int64("offset")
	if apiErr != nil {
		return nil, apiErr
	}
	limit, apiErr := p.int("limit")
	if apiErr != nil {
		return nil, apiErr
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout, apiErr := p.int("timeout")
	if apiErr != nil {
		return nil, apiErr
	}
	var allowed []string
	if apiErr := p.decode("allowed_updates", &allowed); apiErr != nil {
		return nil, apiErr
	}

	s.mu.Lock()
	if s.webhook.url != "" {
		s.mu.Unlock()
		return nil, webhookConflict()
	}
	if p.has("allowed_updates") {
		s.allowed = allowed
	}
	s.confirmLocked(offset)
	s.pollGen++
	gen := s.pollGen
	s.notifyLocked()
	s.mu.Unlock()

	deadline := time.NewTimer(time.Duration(max(timeout, 0)) * time.Second)
	defer deadline.Stop()
	expired := timeout <= 0
	for {
		s.mu.Lock()
		if s.webhook.url != "" {
			s.mu.Unlock()
			return nil, webhookConflict()
		}
		if s.pollGen != gen {
			s.mu.Unlock()
			return nil, &apiError{code: http.StatusConflict, description: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
		}
		batch := s.takeBatchLocked(limit)
		changed := s.changed
		s.mu.Unlock()
		if len(batch) > 0 || expired {
			return batch, nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			expired = true
		case <-ctx.Done():
			return []json.RawMessage{}, nil
		case <-s.ctx.Done():
			return []json.RawMessage{}, nil
		}
	}
}

func webhookConflict() *apiError {
	return &apiError{code: http.StatusConflict, description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
}

// confirmLocked applies getUpdates' offset: updates below it are confirmed
// and forgotten; a negative offset keeps only the last -offset updates.
func (s *Server) confirmLocked(offset int64) {
	if offset < 0 {
		keep := int(-offset)
		if len(s.queue) > keep {
			s.queue = slices.Clone(s.queue[len(s.queue)-keep:])
		}
		return
	}
	s.queue = slices.DeleteFunc(s.queue, func(q queuedUpdate) bool {
		if q.redelivery {
			// A redelivered update sits below the bot's offset by design; it
			// is confirmed only once the bot has actually received it.
			return q.handedOut && q.id < offset
		}
		return q.id < offset
	})
}

// takeBatchLocked returns up to limit pending updates. A redelivered update
// travels alone: its id is lower than its neighbours', and a client that
// sets offset from the last update of a batch would otherwise re-fetch them.
func (s *Server) takeBatchLocked(limit int) []json.RawMessage {
	s.queue = slices.DeleteFunc(s.queue, func(q queuedUpdate) bool { return !s.allowedLocked(q.kind) })
	batch := []json.RawMessage{}
	for i := range s.queue {
		q := &s.queue[i]
		if len(batch) == limit || (q.redelivery && len(batch) > 0) {
			break
		}
		batch = append(batch, q.body)
		if q.redelivery {
			q.handedOut = true
			break
		}
	}
	return batch
}

func (s *Server) setWebhook(_ context.Context, p params) (any, *apiError) {
	rawURL := p.str("url")
	if rawURL == "" {
		return s.removeWebhook(p.bool("drop_pending_updates"))
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		// Telegram insists on HTTPS; the emulator also takes plain HTTP
		// because tests listen on loopback without certificates.
		return nil, badRequest("bad webhook: An HTTPS URL must be provided for webhook")
	}
	secret := p.str("secret_token")
	if len(secret) > 256 || !secretPattern.MatchString(secret) {
		return nil, badRequest("secret token contains unallowed characters")
	}
	maxConn, apiErr := p.int("max_connections")
	if apiErr != nil {
		return nil, apiErr
	}
	if maxConn == 0 {
		maxConn = 40
	}
	var allowed []string
	if apiErr := p.decode("allowed_updates", &allowed); apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.bool("drop_pending_updates") {
		s.queue = nil
	}
	if p.has("allowed_updates") {
		s.allowed = allowed
	}
	same := s.webhook.url == rawURL && s.webhook.secret == secret
	s.webhook = webhookState{url: rawURL, secret: secret, maxConnections: maxConn}
	// A waiting long poll wakes and ends with 409.
	s.notifyLocked()
	if same {
		return okResult{result: true, description: "Webhook is already set"}, nil
	}
	return okResult{result: true, description: "Webhook was set"}, nil
}

var secretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

func (s *Server) deleteWebhook(_ context.Context, p params) (any, *apiError) {
	return s.removeWebhook(p.bool("drop_pending_updates"))
}

func (s *Server) removeWebhook(dropPending bool) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dropPending {
		s.queue = nil
	}
	wasSet := s.webhook.url != ""
	s.webhook = webhookState{}
	s.notifyLocked()
	if !wasSet {
		return okResult{result: true, description: "Webhook is already deleted"}, nil
	}
	return okResult{result: true, description: "Webhook was deleted"}, nil
}

func (s *Server) getWebhookInfo(context.Context, params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := wireWebhookInfo{URL: s.webhook.url, PendingUpdateCount: len(s.queue)}
	if s.webhook.url != "" {
		info.IPAddress = "127.0.0.1"
		info.MaxConnections = s.webhook.maxConnections
		info.LastErrorDate = s.webhook.lastErrorDate
		info.LastErrorMessage = s.webhook.lastErrorMsg
		info.AllowedUpdates = slices.Clone(s.allowed)
	}
	return info, nil
}

// deliverWebhooks posts queued updates to the webhook one at a time, in
// order, until Close. A failed delivery is retried with doubling pauses and
// dropped after the configured number of attempts, so one bad update cannot
// stall the bot forever.
func (s *Server) deliverWebhooks() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		hook := s.webhook
		var next *queuedUpdate
		if hook.url != "" {
			s.queue = slices.DeleteFunc(s.queue, func(q queuedUpdate) bool { return !s.allowedLocked(q.kind) })
			if len(s.queue) > 0 {
				q := s.queue[0]
				next = &q
			}
		}
		changed := s.changed
		s.mu.Unlock()

		if next == nil {
			select {
			case <-changed:
				continue
			case <-s.ctx.Done():
				return
			}
		}

		errMsg := s.post(hook, next.body)

		s.mu.Lock()
		var pause time.Duration
		switch {
		case errMsg == "":
			// Delivered, even if the webhook changed meanwhile.
			s.removeQueuedLocked(next.seq)
			s.webhook.failures = 0
		case s.webhook.url == hook.url && s.webhook.secret == hook.secret:
			s.webhook.failures++
			s.webhook.lastErrorDate = time.Now().Unix()
			s.webhook.lastErrorMsg = errMsg
			if s.webhook.failures >= s.cfg.webhookAttempts {
				s.removeQueuedLocked(next.seq)
				s.webhook.failures = 0
			} else {
				pause = s.cfg.webhookBackoff << (s.webhook.failures - 1)
			}
		}
		s.notifyLocked()
		s.mu.Unlock()

		if pause > 0 {
			select {
			case <-time.After(pause):
			case <-s.ctx.Done():
				return
			}
		}
	}
}

func (s *Server) removeQueuedLocked(seq int64) {
	s.queue = slices.DeleteFunc(s.queue, func(q queuedUpdate) bool { return q.seq == seq })
}

// post delivers one update and returns "" on success or the text
// getWebhookInfo shows as last_error_message. A 2xx response may carry a
// method call in its body, which Telegram executes.
func (s *Server) post(hook webhookState, body []byte) string {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, hook.url, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if hook.secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", hook.secret)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "Connection failed: " + err.Error()
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxRequestBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Sprintf("Wrong response from the webhook: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	s.runWebhookReply(resp.Header.Get("Content-Type"), reply)
	return ""
}

// runWebhookReply executes a method a bot returned in its webhook response
// ({"method":"sendMessage",...}). Telegram reports nothing back, so neither
// does the emulator beyond recording the call.
func (s *Server) runWebhookReply(contentType string, reply []byte) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if mediaType != "application/json" || len(bytes.TrimSpace(reply)) == 0 {
		return
	}
	p := params{values: map[string]string{}, files: map[string]upload{}}
	if p.addJSON(reply) != nil || p.str("method") == "" {
		return
	}
	method := p.str("method")
	delete(p.values, "method")
	_, _ = s.invoke(s.ctx, method, p)
}
