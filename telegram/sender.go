package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/go-telegram/bot"

	"wgbot/metrics"

	"wgbot"
)

// ErrBlocked is returned for a send to a user who blocked the bot. The user
// has been marked blocked and the send was not retried; callers such as
// reminder jobs should not retry it either. It is the domain's
// wgbot.ErrUserBlocked, which the job queue matches.
var ErrBlocked = wgbot.ErrUserBlocked

// sendKind decides how a call is paced.
type sendKind int

const (
	// kindReply is a message or edit a user is waiting for: paced by the
	// global limit only, ahead of any bulk send.
	kindReply sendKind = iota
	// kindAnswer answers a callback or pre-checkout query: not a message,
	// so not paced, and short-lived.
	kindAnswer
	// kindBulk is a broadcast message: paced by the broadcast's own rate
	// and at most one per chat per second, as Telegram asks of bots, and
	// sent only when no reply waits.
	kindBulk
)

// call describes one API call for the sender.
type call struct {
	method string
	chatID int64 // 0 when the call has no chat
	kind   sendKind
}

// sender is the one way the bot talks to the Bot API. Every handler, the
// broadcast and other packages' notifications go through it, so the
// global rate limit, retries and blocked-user marking hold everywhere.
// The global rate is shared among chats in turn, not first come first
// served, so one chat's backlog never delays another chat's reply (I11).
type sender struct {
	log      *slog.Logger
	global   *fairPacer
	attempts int
	backoff  time.Duration // pause before the first retry of a network error or 5xx
	maxWait  time.Duration // longest retry_after honoured; longer fails the send
	timeout  time.Duration // per attempt
	blocked  func(ctx context.Context, chatID int64)
	metrics  *metrics.Metrics

	mu       sync.Mutex
	lastSent map[int64]time.Time // chat → last attempt, for the per-chat limit
}

// newSender is the bot's sender, with cfg's rates, retries and metrics
// (defaults filled in); blocked is told about users who blocked the bot.
func newSender(cfg Config, log *slog.Logger, blocked func(context.Context, int64)) *sender {
	return &sender{
		log: log, global: newFairPacer(cfg.GlobalRate, cfg.BroadcastRate), attempts: cfg.SendAttempts,
		backoff: cfg.RetryBackoff, maxWait: cfg.MaxRetryAfter, timeout: cfg.SendTimeout,
		blocked: blocked, metrics: cfg.Metrics, lastSent: map[int64]time.Time{},
	}
}

// do runs fn until it succeeds, fails for good, or ctx ends. fn must build
// its request afresh each time (an upload's reader is used up by a try).
// A 429 is retried after the retry_after Telegram asks for; network
// errors and 5xx after a doubling, jittered pause; a 403 marks the user
// blocked and is final, as is any other 4xx. The final error is logged
// here, so callers may ignore it.
func (s *sender) do(ctx context.Context, c call, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err := s.pace(ctx, c); err != nil {
			return s.fail(c, attempt-1, err)
		}
		actx, cancel := context.WithTimeout(ctx, s.timeout)
		err = fn(actx)
		cancel()
		if c.kind != kindAnswer {
			// Telegram saw the message somewhere between the start of the
			// call and its answer; counting the per-chat gap from the
			// answer keeps it a full second on Telegram's clock too.
			s.touch(c.chatID)
		}
		if err == nil {
			return nil
		}
		s.metrics.TelegramError(errorCode(err))
		if ctx.Err() != nil {
			return s.fail(c, attempt, err)
		}
		var tooMany *bot.TooManyRequestsError
		var wait time.Duration
		switch {
		case errors.As(err, &tooMany):
			wait = time.Duration(max(tooMany.RetryAfter, 1)) * time.Second
			if wait > s.maxWait {
				return s.fail(c, attempt, err)
			}
			if c.kind == kindBulk {
				// Telegram asks the whole bulk flow to slow down.
				s.global.pauseBulk(wait)
			}
		case errors.Is(err, bot.ErrorForbidden):
			if c.chatID > 0 && s.blocked != nil {
				s.blocked(ctx, c.chatID)
			}
			s.log.Info("telegram: the user blocked the bot", "method", c.method, "chat", c.chatID)
			return fmt.Errorf("%s to %d: %w", c.method, c.chatID, ErrBlocked)
		case permanent(err):
			return s.fail(c, attempt, err)
		default:
			// A network error, a timeout of this attempt or a 5xx: the
			// request may or may not have arrived, and Telegram asks
			// clients to try again.
			wait = s.backoff << (attempt - 1)
			wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
		}
		if attempt >= s.attempts {
			return s.fail(c, attempt, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return s.fail(c, attempt, err)
		case <-t.C:
		}
	}
}

var otherCode = regexp.MustCompile(`error response from telegram for method [^,]+, (\d{3}) `)

// errorCode labels a Bot API error for the metric: its HTTP-like code, or
// "network" when no answer came.
func errorCode(err error) string {
	var tooMany *bot.TooManyRequestsError
	var migrate *bot.MigrateError
	switch {
	case errors.As(err, &tooMany):
		return "429"
	case errors.Is(err, bot.ErrorForbidden):
		return "403"
	case errors.Is(err, bot.ErrorBadRequest):
		return "400"
	case errors.Is(err, bot.ErrorUnauthorized):
		return "401"
	case errors.Is(err, bot.ErrorNotFound):
		return "404"
	case errors.Is(err, bot.ErrorConflict):
		return "409"
	case errors.As(err, &migrate):
		return "400"
	}
	// Other codes (5xx) survive only in the library's message.
	if m := otherCode.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return "network"
}

// permanent reports a Bot API refusal that the same request would get
// again: a 4xx other than 429.
func permanent(err error) bool {
	var migrate *bot.MigrateError
	return errors.Is(err, bot.ErrorBadRequest) || errors.Is(err, bot.ErrorUnauthorized) ||
		errors.Is(err, bot.ErrorNotFound) || errors.Is(err, bot.ErrorConflict) || errors.As(err, &migrate)
}

func (s *sender) fail(c call, attempts int, err error) error {
	s.log.Warn("telegram: send failed", "method", c.method, "chat", c.chatID, "attempts", attempts, "err", err)
	return fmt.Errorf("%s to %d: %w", c.method, c.chatID, err)
}

// pace waits until the call may go out.
func (s *sender) pace(ctx context.Context, c call) error {
	switch c.kind {
	case kindAnswer:
		return nil
	case kindBulk:
		if err := s.waitChat(ctx, c.chatID); err != nil {
			return err
		}
	}
	if err := s.global.wait(ctx, c.chatID, c.kind == kindBulk); err != nil {
		return err
	}
	s.touch(c.chatID)
	return nil
}

// perChat is the shortest gap between two bulk sends to one chat.
const perChat = time.Second

// waitChat holds a bulk send until a second has passed since the last
// message to that chat, whatever sent it.
func (s *sender) waitChat(ctx context.Context, chatID int64) error {
	for {
		s.mu.Lock()
		last, ok := s.lastSent[chatID]
		s.mu.Unlock()
		d := time.Until(last.Add(perChat))
		if !ok || d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// touch records a send to chatID, forgetting chats quiet for longer than
// the per-chat gap so the map stays as small as the recent traffic.
func (s *sender) touch(chatID int64) {
	if chatID == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSent[chatID] = now
	if len(s.lastSent) > 4096 {
		for id, t := range s.lastSent {
			if now.Sub(t) > perChat {
				delete(s.lastSent, id)
			}
		}
	}
}

// pacerHeadroom stretches intervals a little: Telegram counts on its own
// clock, and requests spaced exactly on ours can arrive bunched up.
const pacerHeadroom = 1.04

// fairPacer hands out send slots at a fixed rate, with no burst, to chats
// in turn: each chat with sends waiting gets one slot per round, so a
// chat with a hundred sends queued delays another chat's by at most one
// slot per other waiting chat. Replies go before bulk sends, which also
// keep to their own, lower rate; both rates hold at the moment a slot is
// handed out, so any second holds at most that many. Slots are handed out
// by one goroutine, started when a send waits and ending when none does.
type fairPacer struct {
	interval     time.Duration
	bulkInterval time.Duration
	wake         chan struct{} // a new waiter while serve sleeps

	mu       sync.Mutex
	next     time.Time // the earliest time the next slot may be handed out
	bulkNext time.Time // the same for a bulk send
	lines    map[lineKey][]*slotWaiter
	turns    [2][]lineKey // lines with waiters, replies then bulk, in turn order
	serving  bool
}

// lineKey is one chat's line of one class; chat 0 holds calls without a chat.
type lineKey struct {
	chat int64
	bulk bool
}

type slotWaiter struct {
	granted chan struct{}
	gone    bool // the caller gave up; its turn is skipped
}

func newFairPacer(perSecond, bulkPerSecond float64) *fairPacer {
	return &fairPacer{
		interval:     time.Duration(float64(time.Second) * pacerHeadroom / perSecond),
		bulkInterval: time.Duration(float64(time.Second) * pacerHeadroom / bulkPerSecond),
		wake:         make(chan struct{}, 1),
		lines:        map[lineKey][]*slotWaiter{},
	}
}

// wait queues the call in its chat's line and returns when it has a slot.
func (p *fairPacer) wait(ctx context.Context, chatID int64, bulk bool) error {
	w := &slotWaiter{granted: make(chan struct{})}
	k := lineKey{chat: chatID, bulk: bulk}
	p.mu.Lock()
	if len(p.lines[k]) == 0 {
		p.turns[class(bulk)] = append(p.turns[class(bulk)], k)
	}
	p.lines[k] = append(p.lines[k], w)
	if !p.serving {
		p.serving = true
		go p.serve()
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		select {
		case <-w.granted:
			return nil // granted meanwhile: use it
		default:
			w.gone = true
			return ctx.Err()
		}
	}
}

// pauseBulk holds bulk sends back until d from now (Telegram's 429).
func (p *fairPacer) pauseBulk(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); p.bulkNext.Before(until) {
		p.bulkNext = until
	}
}

func class(bulk bool) int {
	if bulk {
		return 1
	}
	return 0
}

// serve hands out slots until no call waits.
func (p *fairPacer) serve() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		p.mu.Lock()
		now := time.Now()
		until := p.next
		if !now.Before(p.next) {
			w := p.takeLocked(0)
			if w == nil && !now.Before(p.bulkNext) {
				if w = p.takeLocked(1); w != nil {
					p.bulkNext = now.Add(p.bulkInterval)
				}
			}
			if w != nil {
				close(w.granted)
				p.next = now.Add(p.interval)
				p.mu.Unlock()
				continue
			}
			if len(p.turns[1]) == 0 {
				p.serving = false
				p.mu.Unlock()
				return
			}
			until = p.bulkNext // only bulk sends wait, and not yet
		}
		p.mu.Unlock()
		// A reply arriving meanwhile wakes us: it may go before until.
		t.Reset(time.Until(until))
		select {
		case <-t.C:
		case <-p.wake:
			t.Stop()
		}
	}
}

// takeLocked removes the first live waiter of class c whose turn it is;
// its line, if it has more, goes to the back of the turns.
func (p *fairPacer) takeLocked(c int) *slotWaiter {
	for len(p.turns[c]) > 0 {
		k := p.turns[c][0]
		p.turns[c] = p.turns[c][1:]
		line := p.lines[k]
		for len(line) > 0 && line[0].gone {
			line = line[1:]
		}
		if len(line) == 0 {
			delete(p.lines, k)
			continue
		}
		w := line[0]
		if line = line[1:]; len(line) > 0 {
			p.lines[k] = line
			p.turns[c] = append(p.turns[c], k)
		} else {
			delete(p.lines, k)
		}
		return w
	}
	return nil
}
