package telegram

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/go-telegram/bot"
)

// broadcastJob is one admin's /broadcast: the text and the users it goes
// to, fixed when it was queued.
type broadcastJob struct {
	text  string
	users []int64
	admin int64 // chat that gets the report
	lang  string
}

// broadcaster sends queued broadcasts one after another at BroadcastRate,
// at most one message per chat per second, through the bot's sender (so
// 429s are waited out, and a 403 marks the user blocked and is final).
// The queue lives in this process: a restart drops what is unsent, and
// the admin, who gets no report then, can send it again.
type broadcaster struct {
	b    *Bot
	jobs chan broadcastJob
	pace *pacer
}

// broadcastParallel is how many sends may wait on Telegram at once; the
// pacer, not this, sets the rate, but one slow reply must not stall it.
const broadcastParallel = 8

func newBroadcaster(b *Bot) *broadcaster {
	return &broadcaster{b: b, jobs: make(chan broadcastJob, 4), pace: newPacer(b.cfg.BroadcastRate)}
}

// enqueue queues a job; false when the queue is full.
func (bc *broadcaster) enqueue(job broadcastJob) bool {
	select {
	case bc.jobs <- job:
		return true
	default:
		return false
	}
}

// run sends queued broadcasts until ctx ends.
func (bc *broadcaster) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-bc.jobs:
			bc.send(ctx, job)
		}
	}
}

func (bc *broadcaster) send(ctx context.Context, job broadcastJob) {
	b := bc.b
	var delivered, blocked, failed atomic.Int64
	slots := make(chan struct{}, broadcastParallel)
	var wg sync.WaitGroup
	for _, chatID := range job.users {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			err := b.send.do(ctx, call{method: "sendMessage", chatID: chatID, kind: kindBulk, bulk: bc.pace}, func(ctx context.Context) error {
				_, err := b.api.SendMessage(ctx, &bot.SendMessageParams{ChatID: chatID, Text: job.text})
				return err
			})
			switch {
			case err == nil:
				delivered.Add(1)
			case errors.Is(err, ErrBlocked):
				blocked.Add(1)
			default:
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	sent := delivered.Load() + blocked.Load() + failed.Load()
	b.log.Info("telegram: broadcast finished", "users", len(job.users), "delivered", delivered.Load(),
		"blocked", blocked.Load(), "failed", failed.Load(), "not_sent", int64(len(job.users))-sent)
	if ctx.Err() != nil {
		return
	}
	// The admin's own copy may have just gone out; keep their chat at one
	// message a second too.
	if b.send.waitChat(ctx, job.admin) == nil {
		_ = b.sendText(ctx, job.admin, b.t.get(job.lang, mAdminBroadcastDone, delivered.Load(), blocked.Load(), failed.Load()), nil)
	}
}
