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
	// global limit only.
	kindReply sendKind = iota
	// kindAnswer answers a callback or pre-checkout query: not a message,
	// so not paced, and short-lived.
	kindAnswer
	// kindBulk is a broadcast message: paced by the broadcast's own rate
	// and at most one per chat per second, as Telegram asks of bots.
	kindBulk
)

// call describes one API call for the sender.
type call struct {
	method string
	chatID int64 // 0 when the call has no chat
	kind   sendKind
	bulk   *pacer // the broadcast's pacer, for kindBulk
}

// sender is the one way the bot talks to the Bot API. Every handler, the
// broadcast and other packages' notifications go through it, so the
// global rate limit, retries and blocked-user marking hold everywhere.
type sender struct {
	log      *slog.Logger
	global   *pacer
	attempts int
	backoff  time.Duration // pause before the first retry of a network error or 5xx
	maxWait  time.Duration // longest retry_after honoured; longer fails the send
	timeout  time.Duration // per attempt
	blocked  func(ctx context.Context, chatID int64)
	metrics  *metrics.Metrics

	mu       sync.Mutex
	lastSent map[int64]time.Time // chat → last attempt, for the per-chat limit
}

func newSender(log *slog.Logger, globalRate float64, attempts int, backoff, maxWait, timeout time.Duration, blocked func(context.Context, int64)) *sender {
	return &sender{
		log: log, global: newPacer(globalRate), attempts: attempts, backoff: backoff,
		maxWait: maxWait, timeout: timeout, blocked: blocked, lastSent: map[int64]time.Time{},
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
			if c.bulk != nil {
				// Telegram asks the whole bulk flow to slow down.
				c.bulk.pause(wait)
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
		if c.bulk != nil {
			if err := c.bulk.wait(ctx); err != nil {
				return err
			}
		}
	}
	if err := s.global.wait(ctx); err != nil {
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

// pacer spaces events evenly at a fixed rate with no burst, so any window
// of one second holds at most rate events. Waiters are served in the
// order they called wait.
type pacer struct {
	interval time.Duration

	mu   sync.Mutex
	next time.Time // the earliest time the next event may happen
}

// pacerHeadroom stretches the interval a little: Telegram counts on its
// own clock, and requests spaced exactly on ours can arrive bunched up.
const pacerHeadroom = 1.04

func newPacer(perSecond float64) *pacer {
	return &pacer{interval: time.Duration(float64(time.Second) * pacerHeadroom / perSecond)}
}

// wait reserves the next free slot and sleeps until it. A slot given up
// because ctx ended stays used; the rate is only ever lower for it.
func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.interval)
	p.mu.Unlock()
	d := time.Until(slot)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pause holds every later slot back until d from now.
func (p *pacer) pause(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); p.next.Before(until) {
		p.next = until
	}
}
