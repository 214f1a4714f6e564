package tgtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // sendPhoto must recognise the formats Telegram accepts
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Telegram's limits, counted in UTF-16 code units after entity parsing.
const (
	maxTextLength    = 4096
	maxCaptionLength = 1024
)

func (s *Server) getMe(context.Context, params) (any, *apiError) {
	return s.bot, nil
}

// sendTarget resolves chat_id for a send: the chat must be one the bot has
// seen, and its user must not have blocked the bot.
func (s *Server) sendTargetLocked(p params) (*chatState, *apiError) {
	id, err := strconv.ParseInt(strings.TrimSpace(p.str("chat_id")), 10, 64)
	if err != nil {
		// "@channelusername" and other text: there are no channels here.
		return nil, &apiError{code: http.StatusBadRequest, description: "Bad Request: chat not found"}
	}
	c := s.chats[id]
	if c == nil {
		return nil, &apiError{code: http.StatusBadRequest, description: "Bad Request: chat not found"}
	}
	if c.blocked {
		return nil, blockedError()
	}
	return c, nil
}

// replyTarget checks reply_parameters (or the older reply_to_message_id).
func (s *Server) replyTargetLocked(c *chatState, p params) (*wireMessage, *apiError) {
	var rp struct {
		MessageID                int  `json:"message_id"`
		AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
	}
	if apiErr := p.decode("reply_parameters", &rp); apiErr != nil {
		return nil, apiErr
	}
	if rp.MessageID == 0 {
		id, apiErr := p.int("reply_to_message_id")
		if apiErr != nil {
			return nil, apiErr
		}
		rp.MessageID = id
		rp.AllowSendingWithoutReply = p.bool("allow_sending_without_reply")
	}
	if rp.MessageID == 0 {
		return nil, nil
	}
	if m := c.userMessages[rp.MessageID]; m != nil {
		return m, nil
	}
	if sm := c.byID[rp.MessageID]; sm != nil && !sm.msg.Deleted {
		m := s.wireMessageLocked(c, sm)
		m.ReplyToMessage = nil // Telegram does not nest replies further
		return &m, nil
	}
	if rp.AllowSendingWithoutReply {
		return nil, nil
	}
	return nil, badRequest("message to be replied not found")
}

// addSentLocked stores a bot message in its chat with the next message_id.
func (s *Server) addSentLocked(c *chatState, sm *sentMessage) wireMessage {
	c.lastMessageID++
	sm.msg.ID = c.lastMessageID
	sm.msg.ChatID = c.user.ID
	sm.msg.SentAt = time.Now()
	c.sent = append(c.sent, sm)
	c.byID[sm.msg.ID] = sm
	s.notifyLocked()
	return s.wireMessageLocked(c, sm)
}

// wireMessageLocked renders a bot message as Telegram returns it.
func (s *Server) wireMessageLocked(c *chatState, sm *sentMessage) wireMessage {
	from := wireUser{ID: s.bot.ID, IsBot: true, FirstName: s.bot.FirstName, Username: s.bot.Username}
	m := wireMessage{
		MessageID:       sm.msg.ID,
		From:            &from,
		Date:            sm.msg.SentAt.Unix(),
		Chat:            c.wireChat(),
		ReplyToMessage:  sm.replyTo,
		Text:            sm.msg.Text,
		Entities:        sm.entities,
		Caption:         sm.msg.Caption,
		CaptionEntities: sm.captionEntities,
		ReplyMarkup:     sm.markup,
	}
	if !sm.msg.EditedAt.IsZero() {
		m.EditDate = sm.msg.EditedAt.Unix()
	}
	if f := sm.msg.Document; f != nil {
		m.Document = &wireDocument{FileID: f.ID, FileUniqueID: f.UniqueID, FileName: f.Name, MimeType: f.MIMEType, FileSize: len(f.Data)}
	}
	if f := sm.msg.Photo; f != nil {
		m.Photo = []wirePhotoSize{{FileID: f.ID, FileUniqueID: f.UniqueID, Width: f.Width, Height: f.Height, FileSize: len(f.Data)}}
	}
	if inv := sm.msg.Invoice; inv != nil {
		m.Invoice = &wireInvoice{Title: inv.Title, Description: inv.Description, StartParameter: inv.StartParameter, Currency: inv.Currency, TotalAmount: inv.Total()}
	}
	return m
}

// messageText is a message's text as its parse mode renders it, checked
// as Telegram checks it; empty and tooLong are the method's own answers
// (sendMessage and editMessageText word them differently).
func messageText(p params, empty, tooLong string) (string, []wireEntity, *apiError) {
	if p.str("text") == "" {
		return "", nil, badRequest(empty)
	}
	text, entities, apiErr := formatText(p.str("text"), p.str("parse_mode"), p.str("entities"))
	if apiErr != nil {
		return "", nil, apiErr
	}
	if text == "" {
		return "", nil, badRequest(empty)
	}
	if utf16Len(text) > maxTextLength {
		return "", nil, badRequest(tooLong)
	}
	return text, entities, nil
}

func (s *Server) sendMessage(_ context.Context, p params) (any, *apiError) {
	if strings.TrimSpace(p.str("chat_id")) == "" {
		return nil, badRequest("chat_id is empty")
	}
	text, entities, apiErr := messageText(p, "message text is empty", "message is too long")
	if apiErr != nil {
		return nil, apiErr
	}
	markup, replyKeyboard, apiErr := parseReplyMarkup(p)
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, apiErr := s.sendTargetLocked(p)
	if apiErr != nil {
		return nil, apiErr
	}
	replyTo, apiErr := s.replyTargetLocked(c, p)
	if apiErr != nil {
		return nil, apiErr
	}
	sm := &sentMessage{
		msg:      Message{Method: "sendMessage", Text: text, ParseMode: p.str("parse_mode"), ReplyKeyboard: replyKeyboard},
		entities: entities,
		markup:   markup,
		replyTo:  replyTo,
	}
	if replyTo != nil {
		sm.msg.ReplyTo = replyTo.MessageID
	}
	return s.addSentLocked(c, sm), nil
}

func (s *Server) sendChatAction(_ context.Context, p params) (any, *apiError) {
	if strings.TrimSpace(p.str("chat_id")) == "" {
		return nil, badRequest("chat_id is empty")
	}
	switch p.str("action") {
	case "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
		"upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note":
	default:
		return nil, badRequest("wrong parameter action in request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, apiErr := s.sendTargetLocked(p); apiErr != nil {
		return nil, apiErr
	}
	return true, nil
}

func (s *Server) sendDocument(_ context.Context, p params) (any, *apiError) {
	return s.sendFile(p, "document")
}

func (s *Server) sendPhoto(_ context.Context, p params) (any, *apiError) {
	return s.sendFile(p, "photo")
}

// sendFile implements sendDocument and sendPhoto, whose only differences are
// the parameter name and that a photo must be an image.
func (s *Server) sendFile(p params, kind string) (any, *apiError) {
	if strings.TrimSpace(p.str("chat_id")) == "" {
		return nil, badRequest("chat_id is empty")
	}
	caption, captionEntities, apiErr := formatCaption(p)
	if apiErr != nil {
		return nil, apiErr
	}
	markup, replyKeyboard, apiErr := parseReplyMarkup(p)
	if apiErr != nil {
		return nil, apiErr
	}
	up, hasUpload := p.files[kind]
	ref := p.str(kind)
	if name, ok := strings.CutPrefix(ref, "attach://"); ok {
		up, hasUpload = p.files[name]
		if !hasUpload {
			return nil, badRequest("wrong file identifier/HTTP URL specified")
		}
	}
	if !hasUpload && ref == "" {
		return nil, badRequest("there is no " + kind + " in the request")
	}
	var width, height int
	if hasUpload {
		if len(up.data) == 0 {
			return nil, badRequest("file must be non-empty")
		}
		if kind == "photo" {
			cfg, _, err := image.DecodeConfig(bytes.NewReader(up.data))
			if err != nil {
				return nil, badRequest("IMAGE_PROCESS_FAILED")
			}
			if cfg.Width+cfg.Height > 10000 || cfg.Width > 20*cfg.Height || cfg.Height > 20*cfg.Width {
				return nil, badRequest("PHOTO_INVALID_DIMENSIONS")
			}
			width, height = cfg.Width, cfg.Height
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, apiErr := s.sendTargetLocked(p)
	if apiErr != nil {
		return nil, apiErr
	}
	replyTo, apiErr := s.replyTargetLocked(c, p)
	if apiErr != nil {
		return nil, apiErr
	}
	var f File
	if hasUpload {
		f = s.storeFileLocked(kind, up, width, height)
	} else {
		// A file_id of a file sent before. Telegram would also fetch an
		// HTTP URL; the emulator has no network to fetch from.
		stored := s.files[ref]
		if stored == nil || (kind == "photo" && stored.file.Width == 0) {
			return nil, badRequest("wrong file identifier/HTTP URL specified")
		}
		f = stored.file
	}
	sm := &sentMessage{
		msg:             Message{Caption: caption, ParseMode: p.str("parse_mode"), ReplyKeyboard: replyKeyboard},
		captionEntities: captionEntities,
		markup:          markup,
		replyTo:         replyTo,
	}
	if replyTo != nil {
		sm.msg.ReplyTo = replyTo.MessageID
	}
	if kind == "photo" {
		sm.msg.Method, sm.msg.Photo = "sendPhoto", &f
	} else {
		sm.msg.Method, sm.msg.Document = "sendDocument", &f
	}
	return s.addSentLocked(c, sm), nil
}

func formatCaption(p params) (string, []wireEntity, *apiError) {
	if p.str("caption") == "" {
		return "", nil, nil
	}
	caption, ents, apiErr := formatText(p.str("caption"), p.str("parse_mode"), p.str("caption_entities"))
	if apiErr != nil {
		return "", nil, apiErr
	}
	if utf16Len(caption) > maxCaptionLength {
		return "", nil, badRequest("message caption is too long")
	}
	return caption, ents, nil
}

// storeFileLocked keeps an uploaded file and gives it ids shaped like
// Telegram's: an opaque file_id and a shorter file_unique_id, both
// deterministic.
func (s *Server) storeFileLocked(kind string, up upload, width, height int) File {
	s.nextFile++
	n := s.nextFile
	prefix, dir := "BQACAgIAAxkDAA", "documents"
	if kind == "photo" {
		prefix, dir = "AgACAgIAAxkDAA", "photos"
	}
	opaque := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "tgtest:%d:%s:%06d", s.bot.ID, kind, n))
	name := up.name
	if name == "" {
		name = kind
	}
	mimeType := http.DetectContentType(up.data)
	if i := strings.IndexByte(mimeType, ';'); i >= 0 {
		mimeType = mimeType[:i]
	}
	f := File{
		ID:       prefix + opaque,
		UniqueID: "AgAD" + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "u%06d", n)),
		Name:     name,
		MIMEType: mimeType,
		Data:     up.data,
		Width:    width,
		Height:   height,
	}
	ext := path.Ext(name)
	if kind == "photo" {
		ext = ".jpg"
		f.Name = "" // Telegram keeps no name for photos
	}
	st := &storedFile{file: f, path: fmt.Sprintf("%s/file_%d%s", dir, n, ext)}
	s.files[f.ID] = st
	s.filesByPath[st.path] = st
	return f
}

func (s *Server) getFile(_ context.Context, p params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.files[p.str("file_id")]
	if st == nil {
		return nil, badRequest("invalid file_id")
	}
	return wireFile{FileID: st.file.ID, FileUniqueID: st.file.UniqueID, FileSize: len(st.file.Data), FilePath: st.path}, nil
}

// serveFile answers the download URL https://api.telegram.org/file/bot<token>/<file_path>.
func (s *Server) serveFile(w http.ResponseWriter, rest string) {
	token, filePath, _ := strings.Cut(rest, "/")
	s.mu.Lock()
	st := s.filesByPath[filePath]
	s.mu.Unlock()
	if token != s.token || st == nil {
		writeError(w, &apiError{code: http.StatusNotFound, description: "Not Found"})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(st.file.Data)))
	_, _ = w.Write(st.file.Data)
}

func (s *Server) sendInvoice(_ context.Context, p params) (any, *apiError) {
	if strings.TrimSpace(p.str("chat_id")) == "" {
		return nil, badRequest("chat_id is empty")
	}
	inv, apiErr := parseInvoice(p)
	if apiErr != nil {
		return nil, apiErr
	}
	inv.StartParameter = p.str("start_parameter")
	markup, _, apiErr := parseReplyMarkup(p)
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, apiErr := s.sendTargetLocked(p)
	if apiErr != nil {
		return nil, apiErr
	}
	sm := &sentMessage{msg: Message{Method: "sendInvoice", Invoice: &inv}, markup: markup}
	return s.addSentLocked(c, sm), nil
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// editTarget finds the bot message an edit names by chat_id and message_id.
func (s *Server) editTargetLocked(p params) (*chatState, *sentMessage, *apiError) {
	if p.str("inline_message_id") != "" {
		// Inline-mode messages do not exist in the emulator.
		return nil, nil, badRequest("MESSAGE_ID_INVALID")
	}
	if strings.TrimSpace(p.str("chat_id")) == "" {
		return nil, nil, badRequest("chat_id is empty")
	}
	c, apiErr := s.sendTargetLocked(p)
	if apiErr != nil {
		return nil, nil, apiErr
	}
	id, apiErr := p.int("message_id")
	if apiErr != nil {
		return nil, nil, apiErr
	}
	if id == 0 {
		return nil, nil, badRequest("message identifier is not specified")
	}
	sm := c.byID[id]
	if sm == nil || sm.msg.Deleted {
		if c.userMessages[id] != nil {
			return nil, nil, badRequest("message can't be edited")
		}
		return nil, nil, badRequest("message to edit not found")
	}
	return c, sm, nil
}

const notModified = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"

func (s *Server) editMessageText(_ context.Context, p params) (any, *apiError) {
	text, entities, apiErr := messageText(p, "text must be non-empty", "MESSAGE_TOO_LONG")
	if apiErr != nil {
		return nil, apiErr
	}
	// Omitting reply_markup removes the keyboard, as in Telegram.
	markup, _, apiErr := parseReplyMarkup(p)
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, sm, apiErr := s.editTargetLocked(p)
	if apiErr != nil {
		return nil, apiErr
	}
	if sm.msg.Method != "sendMessage" {
		return nil, badRequest("there is no text in the message to edit")
	}
	if sm.msg.Text == text && sameJSON(sm.entities, entities) && sameJSON(sm.markup, markup) {
		return nil, badRequest(notModified)
	}
	sm.msg.Text, sm.entities, sm.markup = text, entities, markup
	sm.msg.ParseMode = p.str("parse_mode")
	sm.msg.EditedAt = time.Now()
	s.notifyLocked()
	return s.wireMessageLocked(c, sm), nil
}

func (s *Server) editMessageReplyMarkup(_ context.Context, p params) (any, *apiError) {
	markup, _, apiErr := parseReplyMarkup(p)
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, sm, apiErr := s.editTargetLocked(p)
	if apiErr != nil {
		return nil, apiErr
	}
	if sameJSON(sm.markup, markup) {
		return nil, badRequest(notModified)
	}
	sm.markup = markup
	sm.msg.EditedAt = time.Now()
	s.notifyLocked()
	return s.wireMessageLocked(c, sm), nil
}

func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func (s *Server) deleteMessage(_ context.Context, p params) (any, *apiError) {
	if strings.TrimSpace(p.str("chat_id")) == "" {
		return nil, badRequest("chat_id is empty")
	}
	id, apiErr := p.int("message_id")
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	chatID, err := strconv.ParseInt(p.str("chat_id"), 10, 64)
	c := s.chats[chatID]
	if err != nil || c == nil {
		return nil, &apiError{code: http.StatusBadRequest, description: "Bad Request: chat not found"}
	}
	if sm := c.byID[id]; sm != nil && !sm.msg.Deleted {
		sm.msg.Deleted = true
		s.notifyLocked()
		return true, nil
	}
	if c.userMessages[id] != nil {
		delete(c.userMessages, id)
		s.notifyLocked()
		return true, nil
	}
	return nil, badRequest("message to delete not found")
}

const queryTooOld = "query is too old and response timeout expired or query ID is invalid"

func (s *Server) answerCallbackQuery(_ context.Context, p params) (any, *apiError) {
	cacheTime, apiErr := p.int("cache_time")
	if apiErr != nil {
		return nil, apiErr
	}
	if len([]rune(p.str("text"))) > 200 {
		return nil, badRequest("MESSAGE_TOO_LONG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queries[p.str("callback_query_id")]
	if q == nil || q.kind != "callback_query" || q.answered {
		return nil, badRequest(queryTooOld)
	}
	q.answered = true
	q.callback = CallbackAnswer{Text: p.str("text"), ShowAlert: p.bool("show_alert"), URL: p.str("url"), CacheTime: cacheTime, At: time.Now()}
	s.notifyLocked()
	return true, nil
}

func (s *Server) answerPreCheckoutQuery(_ context.Context, p params) (any, *apiError) {
	if !p.has("ok") {
		return nil, badRequest("parameter \"ok\" is required")
	}
	ok := p.bool("ok")
	if !ok && p.str("error_message") == "" {
		return nil, badRequest("error_message must be non-empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queries[p.str("pre_checkout_query_id")]
	if q == nil || q.kind != "pre_checkout_query" || q.answered {
		return nil, badRequest(queryTooOld)
	}
	q.answered = true
	q.preCheckout = PreCheckoutAnswer{OK: ok, ErrorMessage: p.str("error_message"), At: time.Now()}
	s.notifyLocked()
	return true, nil
}

func (s *Server) refundStarPayment(_ context.Context, p params) (any, *apiError) {
	userID, apiErr := p.int64("user_id")
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.charges[p.str("telegram_payment_charge_id")]
	switch {
	case ch == nil || ch.userID != userID:
		return nil, badRequest("CHARGE_NOT_FOUND")
	case ch.refunded:
		return nil, badRequest("CHARGE_ALREADY_REFUNDED")
	}
	ch.refunded = true
	s.notifyLocked()
	return true, nil
}

var commandNamePattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// commandScope reads the scope parameter into the key commands are kept by.
func commandScope(p params) (string, *apiError) {
	var scope struct {
		Type   string `json:"type"`
		ChatID int64  `json:"chat_id"`
	}
	if apiErr := p.decode("scope", &scope); apiErr != nil {
		return "", apiErr
	}
	if scope.Type == "" {
		scope.Type = "default"
	}
	return commandsKey(scope.Type, scope.ChatID, p.str("language_code")), nil
}

func (s *Server) setMyCommands(_ context.Context, p params) (any, *apiError) {
	var cmds []wireBotCommand
	if apiErr := p.decode("commands", &cmds); apiErr != nil {
		return nil, apiErr
	}
	if len(cmds) > 100 {
		return nil, badRequest("too many commands specified")
	}
	key, apiErr := commandScope(p)
	if apiErr != nil {
		return nil, apiErr
	}
	list := make([]Command, 0, len(cmds))
	for _, c := range cmds {
		if !commandNamePattern.MatchString(c.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := len([]rune(strings.TrimSpace(c.Description))); n == 0 || n > 256 {
			return nil, badRequest("command description must be non-empty")
		}
		list = append(list, Command(c))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands[key] = list
	s.notifyLocked()
	return true, nil
}

func (s *Server) getMyCommands(_ context.Context, p params) (any, *apiError) {
	key, apiErr := commandScope(p)
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []wireBotCommand{}
	for _, c := range s.commands[key] {
		out = append(out, wireBotCommand(c))
	}
	return out, nil
}

func (s *Server) deleteMyCommands(_ context.Context, p params) (any, *apiError) {
	key, apiErr := commandScope(p)
	if apiErr != nil {
		return nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.commands, key)
	s.notifyLocked()
	return true, nil
}

// parseInvoice reads and checks the invoice fields sendInvoice and
// createInvoiceLink share, as the Bot API refuses them.
func parseInvoice(p params) (Invoice, *apiError) {
	inv := Invoice{
		Title:         p.str("title"),
		Description:   p.str("description"),
		Payload:       p.str("payload"),
		ProviderToken: p.str("provider_token"),
		Currency:      p.str("currency"),
	}
	var prices []wireLabeledPrice
	if apiErr := p.decode("prices", &prices); apiErr != nil {
		return inv, apiErr
	}
	for _, pr := range prices {
		inv.Prices = append(inv.Prices, Price(pr))
	}
	switch {
	case inv.Title == "" || len([]rune(inv.Title)) > 32:
		return inv, badRequest("INVOICE_TITLE_INVALID")
	case inv.Description == "" || len([]rune(inv.Description)) > 255:
		return inv, badRequest("INVOICE_DESCRIPTION_INVALID")
	case inv.Payload == "" || len(inv.Payload) > 128:
		return inv, badRequest("INVOICE_PAYLOAD_INVALID")
	case !currencyPattern.MatchString(inv.Currency):
		return inv, badRequest("CURRENCY_INVALID")
	case len(inv.Prices) == 0:
		return inv, badRequest("prices must be non-empty")
	case inv.Currency == "XTR" && (len(inv.Prices) != 1 || inv.ProviderToken != ""):
		// Stars invoices take exactly one price and no payment provider.
		return inv, badRequest("STARS_INVOICE_INVALID")
	case inv.Currency != "XTR" && inv.ProviderToken == "":
		return inv, badRequest("PAYMENT_PROVIDER_INVALID")
	case inv.Total() <= 0:
		return inv, badRequest("CURRENCY_TOTAL_AMOUNT_INVALID")
	}
	return inv, nil
}
