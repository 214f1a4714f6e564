package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"wgbot"
	"wgbot/jobs/jobargs"
	"wgbot/postgres"
)

// BroadcastStore is the broadcasts' storage the workers use (postgres.Store).
type BroadcastStore interface {
	Broadcast(ctx context.Context, id int64) (postgres.Broadcast, error)
	BroadcastChunk(ctx context.Context, id int64, chunk int) ([]postgres.Recipient, error)
	ReserveBroadcastSlot(ctx context.Context, interval time.Duration) (time.Time, time.Duration, error)
	RecordBroadcastSend(ctx context.Context, id, telegramID int64, outcome postgres.BroadcastOutcome) error
	FailBroadcastChunk(ctx context.Context, id int64, chunk int) (int, error)
}

// BroadcastSender sends broadcast messages and reports (the bot).
type BroadcastSender interface {
	// SendBroadcast returns an error matching wgbot.ErrUserBlocked for a
	// user who blocked the bot.
	SendBroadcast(ctx context.Context, chatID int64, text string) error
	BroadcastDone(ctx context.Context, adminChat int64, lang string, delivered, blocked, failed int) error
}

// broadcastSendTimeout bounds one broadcast send, which a stopping job lets
// finish: cut off, a message Telegram already took would be sent again by
// the retry.
// It stays well under River's stuck-job rescue, so a stopping job is never
// worked twice at once.
const broadcastSendTimeout = 30 * time.Second

// broadcastWorkers is how many chunks one process sends at once. The
// database's slots, not this, set the rate; several workers keep it up
// while one waits on a slow answer.
const broadcastWorkers = 4

func newBroadcastChunkWorker(deps *Deps, rate float64) *broadcastChunkWorker {
	if rate <= 0 {
		rate = 25
	}
	return &broadcastChunkWorker{deps: deps, interval: time.Duration(float64(time.Second) * 1.04 / rate)}
}

type broadcastChunkWorker struct {
	river.WorkerDefaults[jobargs.BroadcastChunk]
	deps     *Deps
	interval time.Duration // between two broadcast sends of all processes
}

// Work sends the chunk's message to each recipient still pending, one at a
// time, each in a send slot taken from the database so the rate holds
// across processes, and records each outcome before the next send. A stop
// (or the job's timeout) ends it between two recipients; the retry, in
// this process or another, goes on with the rest. The last attempt that
// fails records the chunk's remaining recipients as failed, so the
// broadcast finishes and the admin gets the report.
func (w *broadcastChunkWorker) Work(ctx context.Context, job *river.Job[jobargs.BroadcastChunk]) error {
	store, send := w.deps.Broadcasts, w.deps.Broadcaster
	if store == nil || send == nil {
		return errors.New("broadcast: no store or sender in this process")
	}
	err := w.sendChunk(ctx, store, send, job)
	var cancel *river.JobCancelError
	if err == nil || errors.As(err, &cancel) || job.Attempt < job.MaxAttempts {
		return err
	}
	giveUp, stop := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer stop()
	n, ferr := store.FailBroadcastChunk(giveUp, job.Args.BroadcastID, job.Args.Chunk)
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	w.deps.Log.ErrorContext(ctx, "broadcast chunk gave up; its recipients are counted as failed",
		"broadcast", job.Args.BroadcastID, "chunk", job.Args.Chunk, "recipients", n, "err", err)
	return err
}

func (w *broadcastChunkWorker) sendChunk(ctx context.Context, store BroadcastStore, send BroadcastSender, job *river.Job[jobargs.BroadcastChunk]) error {
	b, err := store.Broadcast(ctx, job.Args.BroadcastID)
	if wgbot.ErrorCode(err) == wgbot.ENotFound {
		return river.JobCancel(err) // deleted by the operator
	}
	if err != nil {
		return err
	}
	recipients, err := store.BroadcastChunk(ctx, b.ID, job.Args.Chunk)
	if err != nil {
		return err
	}
	for _, r := range recipients {
		if err := ctx.Err(); err != nil {
			return err
		}
		outcome := postgres.BroadcastBlocked
		if !r.Blocked {
			_, wait, err := store.ReserveBroadcastSlot(ctx, w.interval)
			if err != nil {
				return err
			}
			if err := sleep(ctx, wait); err != nil {
				return err
			}
			outcome = w.send(ctx, send, r.TelegramID, b.Text)
		}
		// Recorded even when the job is being stopped: the message went.
		record, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := store.RecordBroadcastSend(record, b.ID, r.TelegramID, outcome)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *broadcastChunkWorker) send(ctx context.Context, s BroadcastSender, chatID int64, text string) postgres.BroadcastOutcome {
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), broadcastSendTimeout)
	defer cancel()
	err := s.SendBroadcast(sendCtx, chatID, text)
	switch {
	case err == nil:
		return postgres.BroadcastSent
	case errors.Is(err, wgbot.ErrUserBlocked):
		return postgres.BroadcastBlocked
	default:
		// The sender retried and logged it; a broadcast does not wait
		// for one user.
		return postgres.BroadcastFailed
	}
}

func sleep(ctx context.Context, d time.Duration) error {
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

type broadcastReportWorker struct {
	river.WorkerDefaults[jobargs.BroadcastReport]
	deps *Deps
}

func (w *broadcastReportWorker) Work(ctx context.Context, job *river.Job[jobargs.BroadcastReport]) error {
	if w.deps.Broadcasts == nil || w.deps.Broadcaster == nil {
		return errors.New("broadcast: no store or sender in this process")
	}
	b, err := w.deps.Broadcasts.Broadcast(ctx, job.Args.BroadcastID)
	if err != nil {
		return err
	}
	return deliver(w.deps.Broadcaster.BroadcastDone(ctx, b.AdminChat, b.Lang, b.Sent, b.Blocked, b.Failed))
}
