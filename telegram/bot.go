package telegram

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/metrics"
)

// Config is the bot's settings. Zero values take the defaults below.
type Config struct {
	Token  string // from @BotFather
	APIURL string // Bot API base URL; default https://api.telegram.org (tests: tgtest)

	// WebhookURL is the public HTTPS URL Telegram posts updates to; empty
	// means long polling. WebhookSecret is the secret_token Telegram echoes
	// in X-Telegram-Bot-Api-Secret-Token ([A-Za-z0-9_-], at most 256);
	// empty derives one from the token, so every process of one bot agrees
	// on it without another setting.
	WebhookURL    string
	WebhookSecret string

	// Username is the bot's @username (without @), for referral links;
	// empty asks Telegram (getMe) the first time a link is shown.
	Username string

	AdminIDs       []int64 // Telegram ids allowed to run admin commands
	SupportContact string  // shown by Help and /paysupport, e.g. "@acme_support"

	GlobalRate    float64       // messages per second to all chats, shared fairly among them; default 30 (Telegram's limit)
	BroadcastRate float64       // messages per second this process's broadcast sends may take; default 25
	SendAttempts  int           // tries per API call; default 4
	RetryBackoff  time.Duration // first pause after a network error or 5xx; default 500ms, doubling
	MaxRetryAfter time.Duration // longest 429 retry_after honoured; default 1m
	SendTimeout   time.Duration // per API call attempt; default 30s

	MaxConcurrentUpdates int           // updates handled at once; default 64
	UserBurst            int           // updates one user may send at once before the limit; default 10
	UserRate             float64       // updates per second one user may send after the burst; default 2
	HandlerTimeout       time.Duration // per update; default 2m
	ShutdownTimeout      time.Duration // how long Run waits for handlers at exit; default 30s
	PollTimeout          time.Duration // long-poll timeout; default 50s
	UpdateRetention      time.Duration // how long seen update ids are kept; default 48h
	MaxWebhookBody       int64         // bytes; default 1 MiB

	HTTPClient *http.Client // default: one with a timeout above PollTimeout

	Metrics *metrics.Metrics // Bot API errors by code; nil records nothing

	// Broadcasts stores and queues /broadcast; nil refuses the command.
	Broadcasts BroadcastQueue

	// PanelLinks issues the web panel's sign-in links for /panel; nil:
	// the panel is off (no PANEL_URL).
	PanelLinks PanelLinks

	// Audit records what admins do with the admin commands; nil records
	// nothing.
	Audit Auditor
}

func (c *Config) setDefaults() {
	if c.APIURL == "" {
		c.APIURL = "https://api.telegram.org"
	}
	def(&c.GlobalRate, 30)
	def(&c.BroadcastRate, 25)
	def(&c.SendAttempts, 4)
	def(&c.MaxConcurrentUpdates, 64)
	def(&c.UserBurst, 10)
	def(&c.UserRate, 2)
	def(&c.MaxWebhookBody, 1<<20)
	def(&c.RetryBackoff, 500*time.Millisecond)
	def(&c.MaxRetryAfter, time.Minute)
	def(&c.SendTimeout, 30*time.Second)
	def(&c.HandlerTimeout, 2*time.Minute)
	def(&c.ShutdownTimeout, 30*time.Second)
	def(&c.PollTimeout, 50*time.Second)
	def(&c.UpdateRetention, 48*time.Hour)
	if c.WebhookURL != "" && c.WebhookSecret == "" {
		sum := sha256.Sum256([]byte("wgbot webhook secret\x00" + c.Token))
		c.WebhookSecret = hex.EncodeToString(sum[:])
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.PollTimeout + 15*time.Second}
	}
}

// def sets *v to d when it is unset (zero or less).
func def[T int | int64 | float64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

var secretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// validate lists every problem at once.
func (c *Config) validate(svc Orders, checkouts []Checkout) error {
	var problems []string
	if id, secret, ok := strings.Cut(c.Token, ":"); !ok || id == "" || secret == "" {
		problems = append(problems, "token: want <bot id>:<secret> from @BotFather")
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		problems = append(problems, "API URL: want an http(s) URL")
	}
	if c.WebhookURL != "" {
		if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, "webhook URL: want the public https URL Telegram posts to")
		}
		if !secretPattern.MatchString(c.WebhookSecret) {
			problems = append(problems, "webhook secret: want 1-256 characters of A-Z, a-z, 0-9, _ and -")
		}
	}
	for _, id := range c.AdminIDs {
		if id <= 0 {
			problems = append(problems, fmt.Sprintf("admin ids: %d is not a Telegram user id", id))
		}
	}
	for _, p := range svc.Plans() {
		if !planNamePattern.MatchString(p.Name) {
			problems = append(problems, fmt.Sprintf("plan %q: a name the bot can put in a button has 1-32 characters of A-Z, a-z, 0-9, _ . -", p.Name))
		}
	}
	seen := map[string]bool{providerStars: true}
	for _, co := range checkouts {
		switch {
		case co == nil:
			problems = append(problems, "checkouts: nil checkout")
		case !providerPattern.MatchString(co.Provider()):
			problems = append(problems, fmt.Sprintf("checkout %q: provider names have 1-16 characters of a-z, 0-9 and _", co.Provider()))
		case seen[co.Provider()]:
			problems = append(problems, fmt.Sprintf("checkout %q: provider listed twice (or named like the built-in Stars)", co.Provider()))
		case co.Currency() == "":
			problems = append(problems, fmt.Sprintf("checkout %q: no currency", co.Provider()))
		}
		if co != nil {
			seen[co.Provider()] = true
		}
	}
	if len(problems) > 0 {
		return errors.New("telegram settings: " + strings.Join(problems, "; "))
	}
	return nil
}

// Checkout is a payment provider other than Telegram Stars (YooKassa,
// Crypto Pay, ...). The bot creates the order and shows the URL Start
// returns as a button; the provider's webhook later confirms the payment
// through service.PayOrder; the payment job queued with the credit tells
// the user.
type Checkout interface {
	// Provider is the name stored on orders and payments, e.g. "yookassa".
	Provider() string
	// Currency is the plan price currency this provider charges; plans
	// without a price in it are not offered with this provider.
	Currency() string
	// Title is the button label in lang ("en" or "ru"), e.g. "Bank card".
	Title(lang string) string
	// Start creates the provider's checkout for a pending order and
	// returns the URL the user pays at. It may record the provider's id
	// with service.SetOrderRef. Errors should be wgbot errors; anything
	// else is shown to the user as an internal error.
	Start(ctx context.Context, order wgbot.Order, user wgbot.User) (payURL string, err error)
}

// providerStars is the provider name of Telegram Stars payments.
const providerStars = "stars"

// currencyStars is Telegram Stars' currency code.
const currencyStars = "XTR"

// Bot is the Telegram bot. Create it with New, start it with Run.
type Bot struct {
	svc       Service
	cfg       Config
	checkouts []Checkout
	log       *slog.Logger
	api       *bot.Bot
	send      *sender
	t         texts
	botID     int64
	admins    map[int64]bool

	// base is the context handlers run in: not the caller's, so a handler
	// finishes its work when Run's context ends; cancelled only if
	// handlers outlive ShutdownTimeout.
	base       context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup // tasks at the gate, waiting or running
	gate     *userGate
	room     chan struct{}    // one token per task at the gate: bounds them all
	now      func() time.Time // the gate's clock; tests stop it
	running  atomic.Bool
	me       atomic.Pointer[string] // the bot's username, once getMe told it

	// modeSet is true once Run has set the update mode; until then
	// modeErr holds the last failure, for Ready.
	modeSet atomic.Bool
	modeErr atomic.Pointer[error]
}

// New checks the settings and builds the bot without contacting Telegram.
// checkouts are the payment providers offered besides Telegram Stars.
func New(svc Service, cfg Config, checkouts []Checkout, log *slog.Logger) (*Bot, error) {
	if svc == nil || log == nil {
		return nil, errors.New("telegram: New needs a service and a logger")
	}
	cfg.setDefaults()
	if err := cfg.validate(svc, checkouts); err != nil {
		return nil, err
	}
	b := &Bot{
		svc: svc, cfg: cfg, checkouts: slices.Clone(checkouts), log: log.With("component", "telegram"),
		t: catalogue(), admins: map[int64]bool{},
		gate: newUserGate(cfg.UserRate, cfg.UserBurst, cfg.MaxConcurrentUpdates),
		room: make(chan struct{}, cfg.MaxConcurrentUpdates*maxWaitingPerHandler),
		now:  time.Now,
	}
	b.base, b.cancelBase = context.WithCancel(context.Background())
	for _, id := range cfg.AdminIDs {
		b.admins[id] = true
	}
	api, err := bot.New(cfg.Token,
		bot.WithSkipGetMe(),
		bot.WithServerURL(strings.TrimRight(cfg.APIURL, "/")),
		bot.WithHTTPClient(cfg.PollTimeout, cfg.HTTPClient),
		bot.WithAllowedUpdates(allowedUpdates()),
		bot.WithDefaultHandler(b.onPolledUpdate),
		// The library would start a goroutine per update that nothing
		// waits for; dispatch starts its own, counted for shutdown.
		bot.WithNotAsyncHandlers(),
		bot.WithErrorsHandler(func(err error) { b.log.Warn("telegram: client error", "err", err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram client: %w", err)
	}
	b.api = api
	b.botID = api.ID()
	b.send = newSender(cfg, b.log, b.markBlocked)
	return b, nil
}

// allowedUpdates are the update kinds the bot handles; Telegram drops the
// rest before they cost a request.
func allowedUpdates() []string {
	return []string{models.AllowedUpdateMessage, models.AllowedUpdateCallbackQuery,
		models.AllowedUpdatePreCheckoutQuery, models.AllowedUpdateMyChatMember}
}

// Run starts the bot and blocks until ctx ends: it sets the webhook when
// there is a WebhookURL (WebhookHandler must be served meanwhile) or
// deletes it to long-poll, retrying while Telegram fails (Ready reports
// it), then registers the command menu and receives updates. It returns
// after every update already taken has been handled, or ShutdownTimeout
// has passed.
func (b *Bot) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("telegram: Run called twice")
	}
	defer b.drain()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { b.pruneUpdates(ctx) })
	if !b.startUpdateMode(ctx) {
		return nil
	}
	b.setCommands(ctx)
	if b.cfg.WebhookURL != "" {
		b.log.Info("telegram: receiving updates by webhook", "url", b.cfg.WebhookURL)
		<-ctx.Done()
	} else {
		b.log.Info("telegram: receiving updates by long polling")
		b.api.Start(ctx)
	}
	return nil
}

// maxStartBackoff is the longest pause between start-up attempts.
const maxStartBackoff = time.Minute

// startUpdateMode calls setUpdateMode until it succeeds, pausing
// RetryBackoff, doubling up to maxStartBackoff, between attempts: a
// Telegram outage at start-up must not stop the process, which serves the
// payment webhooks meanwhile. It returns false if ctx ends first.
func (b *Bot) startUpdateMode(ctx context.Context) bool {
	wait := b.cfg.RetryBackoff
	for {
		err := b.setUpdateMode(ctx)
		if err == nil {
			b.modeSet.Store(true)
			if b.modeErr.Load() != nil {
				b.log.Info("telegram: Bot API reached; the bot is working")
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		b.modeErr.Store(&err)
		why := "Bot API failing at start-up"
		if errors.Is(err, bot.ErrorUnauthorized) {
			// Not an outage: retrying will not help until the operator
			// fixes the setting, so say which one.
			why = "the Bot API refused BOT_TOKEN (401 Unauthorized): check BOT_TOKEN"
		}
		b.log.Error("telegram: "+why+"; retrying, payment webhooks are served meanwhile", "retry_in", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, maxStartBackoff)
	}
}

// Ready returns nil once Run has set the update mode (the bot receives
// updates), else why not: not started yet, or the last Bot API error.
func (b *Bot) Ready() error {
	if b.modeSet.Load() {
		return nil
	}
	if err := b.modeErr.Load(); err != nil {
		return *err
	}
	return errors.New("telegram: update mode not set yet")
}

// setUpdateMode sets the webhook, or deletes one left from an earlier
// webhook run, without which getUpdates fails with 409.
func (b *Bot) setUpdateMode(ctx context.Context) error {
	if b.cfg.WebhookURL != "" {
		err := b.send.do(ctx, call{method: "setWebhook", kind: kindAnswer}, func(ctx context.Context) error {
			_, err := b.api.SetWebhook(ctx, &bot.SetWebhookParams{
				URL: b.cfg.WebhookURL, SecretToken: b.cfg.WebhookSecret, AllowedUpdates: allowedUpdates(),
				MaxConnections: min(b.cfg.MaxConcurrentUpdates, 100),
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("telegram: set webhook: %w", err)
		}
		return nil
	}
	err := b.send.do(ctx, call{method: "deleteWebhook", kind: kindAnswer}, func(ctx context.Context) error {
		_, err := b.api.DeleteWebhook(ctx, &bot.DeleteWebhookParams{})
		return err
	})
	if err != nil {
		return fmt.Errorf("telegram: delete webhook before long polling: %w", err)
	}
	return nil
}

// setCommands registers the command menu in both languages. A failure
// only loses the menu's hints, so it is logged, not fatal.
func (b *Bot) setCommands(ctx context.Context) {
	for _, lang := range languages() {
		cmds := []models.BotCommand{
			{Command: "start", Description: b.t.get(lang, mCmdStart)},
			{Command: "help", Description: b.t.get(lang, mCmdHelp)},
			{Command: "lang", Description: b.t.get(lang, mCmdLang)},
			{Command: "paysupport", Description: b.t.get(lang, mCmdPaySupport)},
			{Command: "promo", Description: b.t.get(lang, mCmdPromo)},
			{Command: "invite", Description: b.t.get(lang, mCmdInvite)},
		}
		code := lang
		if lang == langEN {
			code = "" // English is the default for every other language
		}
		_ = b.send.do(ctx, call{method: "setMyCommands", kind: kindAnswer}, func(ctx context.Context) error {
			_, err := b.api.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: cmds, LanguageCode: code})
			return err
		})
	}
}

// pruneUpdates forgets old update ids now and then; any process may do
// it, and doing it twice is harmless.
func (b *Bot) pruneUpdates(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		n, err := b.svc.PruneTelegramUpdates(ctx, b.cfg.UpdateRetention)
		if err != nil && ctx.Err() == nil {
			b.log.Warn("telegram: prune seen update ids", "err", err)
		} else if n > 0 {
			b.log.Debug("telegram: pruned seen update ids", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// onPolledUpdate receives long-polled updates from the client library.
func (b *Bot) onPolledUpdate(_ context.Context, _ *bot.Bot, upd *models.Update) {
	if !b.dispatch(upd) {
		b.log.Warn("telegram: update dropped during shutdown; Telegram redelivers unconfirmed ones", "update", upd.ID)
	}
}

// maxWaitingPerHandler bounds the tasks waiting at the gate, over all
// users, to this many per handler; beyond it dispatch waits, which holds
// long polling back and makes Telegram retry a webhook later.
const maxWaitingPerHandler = 16

// dispatch hands an update to the user gate: it is dropped there if its
// user is over their limit, else queued in their line and handled by a
// handler goroutine. It waits only while the gate is full, and returns
// false once the bot is shutting down.
func (b *Bot) dispatch(upd *models.Update) bool {
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if closing {
		return false
	}
	select {
	case b.room <- struct{}{}:
	case <-b.base.Done():
		return false
	}
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		<-b.room
		return false
	}
	queued, start := b.gate.offer(upd, b.now())
	if queued {
		b.inflight.Add(1)
	}
	b.mu.Unlock()
	if !queued {
		<-b.room
		b.log.Debug("telegram: update over the user's limit dropped", "update", upd.ID)
		return true
	}
	if start {
		go b.work()
	}
	return true
}

// work runs tasks from the gate until none waits.
func (b *Bot) work() {
	for {
		t, ok := b.gate.next()
		if !ok {
			return
		}
		b.runTask(t)
		b.gate.done(t)
		<-b.room
		b.inflight.Done()
	}
}

func (b *Bot) runTask(t task) {
	defer func() {
		if r := recover(); r != nil {
			var id int64
			if t.upd != nil {
				id = t.upd.ID
			}
			b.log.Error("telegram: handler panicked", "update", id, "panic", r)
		}
	}()
	ctx, cancel := context.WithTimeout(b.base, b.cfg.HandlerTimeout)
	defer cancel()
	switch t.kind {
	case taskUpdate, taskPreCheckout:
		b.handleUpdate(ctx, t.upd)
	case taskNotice:
		_ = b.sendText(ctx, t.chatID, b.t.get(t.lang, mSlowDown), nil)
	case taskAnswer:
		_ = b.answerCallback(ctx, t.queryID, b.t.get(t.lang, t.text), false)
	}
}

// drain stops taking updates and waits for the handlers still running.
func (b *Bot) drain() {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(b.cfg.ShutdownTimeout):
		b.log.Warn("telegram: handlers still running at shutdown; cancelling them", "waited", b.cfg.ShutdownTimeout)
		b.cancelBase()
		<-done
	}
	b.cancelBase()
}

// markBlocked records a 403 from Telegram: the user blocked the bot.
func (b *Bot) markBlocked(ctx context.Context, chatID int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := b.svc.MarkBlocked(ctx, chatID, true); err != nil {
		b.log.Warn("telegram: could not mark user blocked", "chat", chatID, "err", err)
	}
}
