package tgtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server emulates the Bot API for one bot token. It is an http.Handler; New
// also serves it on a loopback httptest server. All methods are safe for
// concurrent use.
type Server struct {
	token string
	bot   wireBotUser
	cfg   config

	ts     *httptest.Server // nil when made by NewHandler
	client *http.Client     // delivers webhooks

	ctx       context.Context // cancelled by Close; ends long polls and deliveries
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu sync.Mutex
	// changed is closed and replaced on every state change, so waiters
	// (long polls, webhook delivery, Wait) wake without polling.
	changed chan struct{}

	nextUpdateID int64
	nextSeq      int64
	queue        []queuedUpdate
	sentUpdates  map[int64]queuedUpdate // every update ever injected, for Redeliver
	allowed      []string               // allowed_updates last set by the bot
	pollGen      int64                  // bumps with each getUpdates; older polls end with 409
	webhook      webhookState

	// reservedIDs is the first update id the state file (WithUpdateIDFile)
	// does not cover yet.
	reservedIDs int64

	chats       map[int64]*chatState
	files       map[string]*storedFile // by file_id
	filesByPath map[string]*storedFile
	nextFile    int
	queries     map[string]*queryState // callback and pre-checkout queries by id
	queryByUpd  map[int64]*queryState
	nextQuery   int64
	charges     map[string]*charge
	links       map[string]*invoiceLink      // createInvoiceLink's invoices by slug
	starSubs    map[string]*starSubscription // Stars subscriptions by each of their charge ids
	nextLink    int
	commands    map[string][]Command // by scope and language
	failures    []failure
	requests    []Request
}

type config struct {
	botUsername     string
	botName         string
	webhookAttempts int
	webhookBackoff  time.Duration
	updateIDFile    string
	firstUpdateID   int64
	chatsFile       string
}

// Option changes a default of New or NewHandler.
type Option func(*config)

// WithBotUsername sets the username getMe reports (default "tgtest_bot");
// commands addressed as /start@username are recognised with it.
func WithBotUsername(username string) Option {
	return func(c *config) { c.botUsername = username }
}

// WithWebhookRetry sets how often a webhook delivery is attempted before the
// update is dropped (default 3) and the pause before the first retry, which
// doubles after each failure (default 50ms). Telegram itself retries for
// hours; tests need a bound.
func WithWebhookRetry(attempts int, backoff time.Duration) Option {
	return func(c *config) {
		c.webhookAttempts = max(attempts, 1)
		c.webhookBackoff = backoff
	}
}

// WithUpdateIDFile keeps the update ids going across emulators, as
// Telegram's keep growing across a bot's restarts: the emulator starts
// where the one before it with the same file stopped, instead of at 1. A
// bot that remembers the ids it handled (to drop redeliveries) would
// otherwise ignore the next run's first updates. Ids are reserved in the
// file in blocks before they are handed out, so an emulator that was
// killed is continued too; a reservation that cannot be written is tried
// again with the next update. A file that exists but holds no id is an
// error of NewHandler (New panics).
func WithUpdateIDFile(path string) Option {
	return func(c *config) { c.updateIDFile = path }
}

// WithFirstUpdateID makes the first update id at least id (default 1; with
// WithUpdateIDFile, the larger of the two), for a bot whose database
// remembers ids an earlier emulator handed out.
func WithFirstUpdateID(id int64) Option {
	return func(c *config) { c.firstUpdateID = id }
}

// updateIDBlock is how many update ids one write of the state file reserves.
const updateIDBlock = 100

// New starts an emulator for token on a loopback httptest server. The token
// must look like a real one ("123456:secret"); New panics otherwise, since
// that is a mistake in the test itself.
func New(token string, opts ...Option) *Server {
	s, err := NewHandler(token, opts...)
	if err != nil {
		panic("tgtest: " + err.Error())
	}
	s.ts = httptest.NewServer(s)
	return s
}

// NewHandler returns an emulator without a listener, for a caller that
// serves it itself (a sandbox on a loopback address). Close still stops its
// background work.
func NewHandler(token string, opts ...Option) (*Server, error) {
	idText, secret, ok := strings.Cut(token, ":")
	botID, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || botID <= 0 || secret == "" {
		return nil, errors.New("bot token is not of the form <bot id>:<secret>")
	}
	cfg := config{
		botUsername:     "tgtest_bot",
		botName:         "Test Bot",
		webhookAttempts: 3,
		webhookBackoff:  50 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	first, err := readUpdateIDFile(cfg.updateIDFile)
	if err != nil {
		return nil, err
	}
	first = max(first, cfg.firstUpdateID)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		token: token,
		bot: wireBotUser{
			ID:            botID,
			IsBot:         true,
			FirstName:     cfg.botName,
			Username:      cfg.botUsername,
			CanJoinGroups: true,
		},
		cfg: cfg,
		client: &http.Client{
			Timeout: 10 * time.Second,
			// Telegram does not follow redirects from a webhook; a 3xx
			// counts as a failed delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx:          ctx,
		cancel:       cancel,
		changed:      make(chan struct{}),
		nextUpdateID: first,
		reservedIDs:  first,
		sentUpdates:  map[int64]queuedUpdate{},
		chats:        map[int64]*chatState{},
		files:        map[string]*storedFile{},
		filesByPath:  map[string]*storedFile{},
		queries:      map[string]*queryState{},
		queryByUpd:   map[int64]*queryState{},
		charges:      map[string]*charge{},
		links:        map[string]*invoiceLink{},
		starSubs:     map[string]*starSubscription{},
		commands:     map[string][]Command{},
	}
	if cfg.chatsFile != "" {
		if err := s.loadChats(cfg.chatsFile); err != nil {
			cancel()
			return nil, err
		}
		s.wg.Add(1)
		go s.saveChats(s.changed)
	}
	s.wg.Add(1)
	go s.deliverWebhooks()
	return s, nil
}

// readUpdateIDFile returns the first update id the state file at path
// leaves free: 1 without a file.
func readUpdateIDFile(path string) (int64, error) {
	if path == "" {
		return 1, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the update id state: %w", err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("update id state %s holds %q, not an update id: remove it to start again at 1", path, strings.TrimSpace(string(raw)))
	}
	return id, nil
}

// reserveUpdateIDsLocked makes sure the state file covers nextUpdateID
// before it is handed out. The file is replaced whole (write, rename), so a
// crash leaves the old reservation or the new one.
func (s *Server) reserveUpdateIDsLocked() {
	if s.cfg.updateIDFile == "" || s.nextUpdateID < s.reservedIDs {
		return
	}
	upto := s.nextUpdateID + updateIDBlock
	tmp := s.cfg.updateIDFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(upto, 10)+"\n"), 0o600); err != nil {
		return
	}
	if err := os.Rename(tmp, s.cfg.updateIDFile); err != nil {
		return
	}
	s.reservedIDs = upto
}

// URL is the base URL to give the client (go-telegram's bot.WithServerURL);
// empty for a Server made by NewHandler.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Close ends pending long polls and webhook deliveries and, for New, shuts
// the listener down. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.notifyLocked()
		s.mu.Unlock()
		if s.ts != nil {
			s.ts.Close()
		}
		s.wg.Wait()
	})
}

// notifyLocked wakes everything waiting for a state change.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// apiError is a Bot API error response.
type apiError struct {
	code        int
	description string
	retryAfter  int
}

func badRequest(text string) *apiError {
	return &apiError{code: http.StatusBadRequest, description: "Bad Request: " + text}
}

// blockedError is Telegram's answer to a send to a user who blocked the bot;
// client code matches on its text.
func blockedError() *apiError {
	return &apiError{code: http.StatusForbidden, description: "Forbidden: bot was blocked by the user"}
}

// errorFor builds the response for an injected failure with the texts
// Telegram uses for those codes.
func errorFor(code, retryAfter int) *apiError {
	switch code {
	case http.StatusTooManyRequests:
		return &apiError{code: code, description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), retryAfter: retryAfter}
	case http.StatusForbidden:
		return blockedError()
	case http.StatusBadRequest:
		return badRequest("injected failure")
	default:
		return &apiError{code: code, description: http.StatusText(code)}
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/file/bot"):
		s.serveFile(w, strings.TrimPrefix(r.URL.Path, "/file/bot"))
	case strings.HasPrefix(r.URL.Path, "/bot"):
		s.serveMethod(w, r, strings.TrimPrefix(r.URL.Path, "/bot"))
	default:
		writeError(w, &apiError{code: http.StatusNotFound, description: "Not Found"})
	}
}

func (s *Server) serveMethod(w http.ResponseWriter, r *http.Request, rest string) {
	token, method, _ := strings.Cut(rest, "/")
	if token != s.token {
		writeError(w, &apiError{code: http.StatusUnauthorized, description: "Unauthorized"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, &apiError{code: http.StatusNotFound, description: "Not Found"})
		return
	}
	p, err := parseParams(r)
	if errors.Is(err, errTooLarge) {
		writeError(w, &apiError{code: http.StatusRequestEntityTooLarge, description: "Request Entity Too Large"})
		return
	}
	if err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	result, apiErr := s.invoke(r.Context(), method, p)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	writeResult(w, result)
}

// invoke runs one API method and records it; both HTTP requests and methods
// returned in a webhook response come through here.
func (s *Server) invoke(ctx context.Context, method string, p params) (any, *apiError) {
	h, name := s.handler(method)
	if h == nil {
		apiErr := &apiError{code: http.StatusNotFound, description: "Not Found"}
		s.record(method, p, apiErr)
		return nil, apiErr
	}
	if apiErr := s.takeFailure(name, p); apiErr != nil {
		s.record(name, p, apiErr)
		return nil, apiErr
	}
	result, apiErr := h(ctx, p)
	s.record(name, p, apiErr)
	return result, apiErr
}

type handlerFunc func(ctx context.Context, p params) (any, *apiError)

// handler maps a method name to its implementation. Telegram matches method
// names case-insensitively; name is the canonical spelling.
func (s *Server) handler(method string) (h handlerFunc, name string) {
	switch strings.ToLower(method) {
	case "getme":
		return s.getMe, "getMe"
	case "getupdates":
		return s.getUpdates, "getUpdates"
	case "setwebhook":
		return s.setWebhook, "setWebhook"
	case "deletewebhook":
		return s.deleteWebhook, "deleteWebhook"
	case "getwebhookinfo":
		return s.getWebhookInfo, "getWebhookInfo"
	case "sendmessage":
		return s.sendMessage, "sendMessage"
	case "senddocument":
		return s.sendDocument, "sendDocument"
	case "sendphoto":
		return s.sendPhoto, "sendPhoto"
	case "sendinvoice":
		return s.sendInvoice, "sendInvoice"
	case "sendchataction":
		return s.sendChatAction, "sendChatAction"
	case "editmessagetext":
		return s.editMessageText, "editMessageText"
	case "editmessagereplymarkup":
		return s.editMessageReplyMarkup, "editMessageReplyMarkup"
	case "deletemessage":
		return s.deleteMessage, "deleteMessage"
	case "answercallbackquery":
		return s.answerCallbackQuery, "answerCallbackQuery"
	case "answerprecheckoutquery":
		return s.answerPreCheckoutQuery, "answerPreCheckoutQuery"
	case "refundstarpayment":
		return s.refundStarPayment, "refundStarPayment"
	case "createinvoicelink":
		return s.createInvoiceLink, "createInvoiceLink"
	case "edituserstarsubscription":
		return s.editUserStarSubscription, "editUserStarSubscription"
	case "setmycommands":
		return s.setMyCommands, "setMyCommands"
	case "getmycommands":
		return s.getMyCommands, "getMyCommands"
	case "deletemycommands":
		return s.deleteMyCommands, "deleteMyCommands"
	case "getfile":
		return s.getFile, "getFile"
	}
	return nil, method
}

// okResult lets a method add the "description" Telegram sends next to some
// results ("Webhook was set").
type okResult struct {
	result      any
	description string
}

func writeResult(w http.ResponseWriter, result any) {
	body := struct {
		OK          bool   `json:"ok"`
		Result      any    `json:"result"`
		Description string `json:"description,omitempty"`
	}{OK: true, Result: result}
	if r, ok := result.(okResult); ok {
		body.Result, body.Description = r.result, r.description
	}
	writeJSON(w, http.StatusOK, body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	type responseParameters struct {
		RetryAfter int `json:"retry_after"`
	}
	body := struct {
		OK          bool                `json:"ok"`
		ErrorCode   int                 `json:"error_code"`
		Description string              `json:"description"`
		Parameters  *responseParameters `json:"parameters,omitempty"`
	}{ErrorCode: e.code, Description: e.description}
	if e.retryAfter > 0 {
		body.Parameters = &responseParameters{RetryAfter: e.retryAfter}
	}
	writeJSON(w, e.code, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
