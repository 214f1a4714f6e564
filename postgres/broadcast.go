package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"
	"wgbot/jobs/jobargs"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"wgbot"
)

// Broadcasts are durable: the text, each recipient and their outcome are
// rows, and the sending is River jobs (one per chunk of recipients) in a
// queue of their own, so a restart resumes where it stopped and any number
// of processes share the work. Their worker lives in package jobs.

// BroadcastChunkSize is how many recipients one chunk job sends to: small,
// so a job ends in seconds and a stop loses little progress.
const BroadcastChunkSize = 20

// Broadcast is one /broadcast and its outcome so far.
type Broadcast struct {
	ID         int64
	Text       string
	AdminChat  int64 // gets the report
	Lang       string
	Recipients int
	Pending    int
	Sent       int
	Blocked    int
	Failed     int
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// BroadcastOutcome is what became of one recipient's message.
type BroadcastOutcome string

// The outcomes a recipient can have.
const (
	BroadcastSent    BroadcastOutcome = "sent"
	BroadcastBlocked BroadcastOutcome = "blocked"
	BroadcastFailed  BroadcastOutcome = "failed"
)

// Recipient is a pending recipient of a broadcast chunk.
type Recipient struct {
	TelegramID int64
	Blocked    bool // has blocked the bot since the broadcast was queued
}

var errNoJobs = errors.New("broadcasts need the job queue")

// audienceFilter is each audience as a condition on users u.
var audienceFilter = map[wgbot.Audience]string{
	wgbot.AudienceAll:    `true`,
	wgbot.AudienceActive: `EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.status = 'active')`,
	wgbot.AudienceExpired: `EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id)
		AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.status = 'active')`,
	wgbot.AudienceNeverPaid: `NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.id AND p.kind = 'payment')`,
}

// AudienceSizes counts each audience's recipients now.
func (s *Store) AudienceSizes(ctx context.Context) (map[wgbot.Audience]int, error) {
	sizes := map[wgbot.Audience]int{}
	for _, a := range wgbot.Audiences() {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users u WHERE NOT u.blocked_bot AND `+audienceFilter[a]).Scan(&n); err != nil {
			return nil, fmt.Errorf("count broadcast audience %s: %w", a, err)
		}
		sizes[a] = n
	}
	return sizes, nil
}

// QueueBroadcast records a broadcast of text to every user who has not
// blocked the bot, and queues its chunk jobs, in one transaction. A
// broadcast with no recipient is finished at once and queues its report.
func (s *Store) QueueBroadcast(ctx context.Context, text string, adminChat int64, lang string) (int, error) {
	return s.QueueBroadcastTo(ctx, text, adminChat, 0, lang, wgbot.AudienceAll)
}

// QueueBroadcastTo is QueueBroadcast to one audience, sent from the
// preview message preview of adminChat (0: none). A preview is queued at
// most once: a second Send of it, however concurrent, queues nothing and
// returns wgbot.ErrBroadcastSent (the unique key on the preview decides).
func (s *Store) QueueBroadcastTo(ctx context.Context, text string, adminChat int64, preview int, lang string, audience wgbot.Audience) (int, error) {
	filter, ok := audienceFilter[audience]
	if !ok {
		return 0, wgbot.Errorf(wgbot.EInvalid, "bad_audience", "no broadcast audience %q", audience)
	}
	if text == "" {
		return 0, wgbot.Errorf(wgbot.EInvalid, "empty_broadcast", "a broadcast needs a text")
	}
	if s.jobs == nil {
		return 0, fmt.Errorf("queue broadcast: %w", errNoJobs)
	}
	var n int
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var id int64
		var previewID *int64
		if preview > 0 {
			v := int64(preview)
			previewID = &v
		}
		err := tx.QueryRow(ctx, `INSERT INTO broadcasts (text, admin_chat, lang, recipients, pending, preview_message)
			VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (admin_chat, preview_message) WHERE preview_message IS NOT NULL DO NOTHING
			RETURNING id`, text, adminChat, lang, previewID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return wgbot.ErrBroadcastSent
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO broadcast_recipients (broadcast_id, telegram_id, chunk)
			SELECT $1, u.telegram_id, (row_number() OVER (ORDER BY u.id) - 1) / $2 FROM users u WHERE NOT u.blocked_bot AND `+filter,
			id, BroadcastChunkSize)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if _, err := tx.Exec(ctx, `UPDATE broadcasts SET recipients = $2, pending = $2,
			finished_at = CASE WHEN $2 = 0 THEN now() END WHERE id = $1`, id, n); err != nil {
			return err
		}
		if n == 0 {
			return s.insertJob(ctx, tx, jobargs.BroadcastReport{BroadcastID: id}, nil)
		}
		chunks := make([]river.InsertManyParams, 0, (n+BroadcastChunkSize-1)/BroadcastChunkSize)
		for c := range cap(chunks) {
			chunks = append(chunks, river.InsertManyParams{Args: jobargs.BroadcastChunk{BroadcastID: id, Chunk: c}})
		}
		_, err = s.jobs.InsertManyTx(ctx, tx, chunks)
		return err
	})
	if errors.Is(err, wgbot.ErrBroadcastSent) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("queue broadcast: %w", err)
	}
	return n, nil
}

// Broadcast reads one broadcast.
func (s *Store) Broadcast(ctx context.Context, id int64) (Broadcast, error) {
	var b Broadcast
	err := s.pool.QueryRow(ctx, `SELECT id, text, admin_chat, lang, recipients, pending, sent, blocked, failed, finished_at
		FROM broadcasts WHERE id = $1`, id).Scan(&b.ID, &b.Text, &b.AdminChat, &b.Lang, &b.Recipients, &b.Pending,
		&b.Sent, &b.Blocked, &b.Failed, &b.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, wgbot.Errorf(wgbot.ENotFound, "broadcast_not_found", "no broadcast %d", id)
	}
	if err != nil {
		return b, fmt.Errorf("read broadcast %d: %w", id, err)
	}
	return b, nil
}

// RecentBroadcasts reads the newest limit broadcasts, newest first, with
// their progress: what is still pending, sent, blocked and failed.
func (s *Store) RecentBroadcasts(ctx context.Context, limit int) ([]Broadcast, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, text, admin_chat, lang, recipients, pending, sent, blocked, failed, created_at, finished_at
		FROM broadcasts ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read broadcasts: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Broadcast, error) {
		var b Broadcast
		err := row.Scan(&b.ID, &b.Text, &b.AdminChat, &b.Lang, &b.Recipients, &b.Pending, &b.Sent, &b.Blocked, &b.Failed, &b.CreatedAt, &b.FinishedAt)
		return b, err
	})
}

// BroadcastChunk returns the recipients of one chunk still waiting for the
// message, in a stable order.
func (s *Store) BroadcastChunk(ctx context.Context, id int64, chunk int) ([]Recipient, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.telegram_id, coalesce(u.blocked_bot, false)
		FROM broadcast_recipients r LEFT JOIN users u ON u.telegram_id = r.telegram_id
		WHERE r.broadcast_id = $1 AND r.chunk = $2 AND r.status = 'pending' ORDER BY r.telegram_id`, id, chunk)
	if err != nil {
		return nil, fmt.Errorf("read broadcast %d chunk %d: %w", id, chunk, err)
	}
	recipients, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Recipient, error) {
		var rc Recipient
		return rc, r.Scan(&rc.TelegramID, &rc.Blocked)
	})
	if err != nil {
		return nil, fmt.Errorf("read broadcast %d chunk %d: %w", id, chunk, err)
	}
	return recipients, nil
}

// ReserveBroadcastSlot takes the next broadcast send slot of all
// processes, interval after the previous one, and returns the slot's time
// and how long to wait for it. The database's clock decides, so the
// processes' clocks need not agree.
func (s *Store) ReserveBroadcastSlot(ctx context.Context, interval time.Duration) (time.Time, time.Duration, error) {
	var at time.Time
	var wait float64
	err := s.pool.QueryRow(ctx, `UPDATE broadcast_pace SET next_at = greatest(next_at, now()) + make_interval(secs => $1)
		RETURNING next_at - make_interval(secs => $1), extract(epoch FROM next_at - now())::float8 - $1`, interval.Seconds()).Scan(&at, &wait)
	if err != nil {
		return at, 0, fmt.Errorf("reserve a broadcast slot: %w", err)
	}
	return at, time.Duration(wait * float64(time.Second)), nil
}

// RecordBroadcastSend records one recipient's outcome, once: a recipient
// already recorded (a retried job) changes nothing. The transaction that
// records the last pending recipient finishes the broadcast and queues
// its report; the broadcast's row lock makes that exactly one.
func (s *Store) RecordBroadcastSend(ctx context.Context, id, telegramID int64, outcome BroadcastOutcome) error {
	switch outcome {
	case BroadcastSent, BroadcastBlocked, BroadcastFailed:
	default:
		return wgbot.Errorf(wgbot.EInvalid, "bad_outcome", "unknown broadcast outcome %q", outcome)
	}
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE broadcast_recipients SET status = $3
			WHERE broadcast_id = $1 AND telegram_id = $2 AND status = 'pending'`, id, telegramID, string(outcome))
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		var pending int
		if err := tx.QueryRow(ctx, `UPDATE broadcasts SET pending = pending - 1,
				sent = sent + ($2 = 'sent')::int, blocked = blocked + ($2 = 'blocked')::int, failed = failed + ($2 = 'failed')::int,
				finished_at = CASE WHEN pending = 1 THEN now() END
			WHERE id = $1 RETURNING pending`, id, string(outcome)).Scan(&pending); err != nil {
			return err
		}
		if pending > 0 {
			return nil
		}
		return s.insertJob(ctx, tx, jobargs.BroadcastReport{BroadcastID: id}, nil)
	})
	if err != nil {
		return fmt.Errorf("record broadcast %d to %d: %w", id, telegramID, err)
	}
	return nil
}

// FailBroadcastChunk records every recipient of the chunk still pending as
// failed, for a chunk job that gives up: the broadcast still finishes and
// its report goes out. Like RecordBroadcastSend, the transaction that
// leaves nothing pending queues the report, once.
func (s *Store) FailBroadcastChunk(ctx context.Context, id int64, chunk int) (int, error) {
	var n int
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE broadcast_recipients SET status = 'failed'
			WHERE broadcast_id = $1 AND chunk = $2 AND status = 'pending'`, id, chunk)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		if n == 0 {
			return nil
		}
		var pending int
		if err := tx.QueryRow(ctx, `UPDATE broadcasts SET pending = pending - $2, failed = failed + $2,
				finished_at = CASE WHEN pending = $2 THEN now() END
			WHERE id = $1 RETURNING pending`, id, n).Scan(&pending); err != nil {
			return err
		}
		if pending > 0 {
			return nil
		}
		return s.insertJob(ctx, tx, jobargs.BroadcastReport{BroadcastID: id}, nil)
	})
	if err != nil {
		return 0, fmt.Errorf("fail broadcast %d chunk %d: %w", id, chunk, err)
	}
	return n, nil
}
