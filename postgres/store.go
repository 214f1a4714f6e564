package postgres

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"wgbot"
)

// NotifyChannel is the LISTEN/NOTIFY channel that carries "server N changed
// to revision R" to every wgbot process and host.
const NotifyChannel = "wgbot_peers"

// Store runs wgbot's business steps against PostgreSQL, one transaction each.
type Store struct {
	pool       *pgxpool.Pool
	lockID     int32         // DB_IP_ALLOC_LOCK_ID
	quarantine time.Duration // how long a freed address rests before reuse

	jobs         *river.Client[pgx.Tx] // the outbox; nil: insert no follow-up jobs
	reminderDays []int
	renewalGrace time.Duration // 0: renewal always restores the same peers
	// nodeDownAfter: a server's node silent this long is down in the stats.
	nodeDownAfter time.Duration
	referral      wgbot.ReferralBonus
	// deadlocks counts transactions PostgreSQL broke a deadlock of and
	// retryTx ran again: the lock order (lockorder.go) keeps it at 0.
	deadlocks atomic.Int64
}

// Deadlocks is how many of this store's transactions PostgreSQL aborted
// to break a deadlock (each was run again).
func (s *Store) Deadlocks() int64 { return s.deadlocks.Load() }

// Options are a Store's settings.
type Options struct {
	// LockID is the first key of the allocator's advisory lock
	// (DB_IP_ALLOC_LOCK_ID); the server id is the second, so servers never
	// contend.
	LockID int32
	// Quarantine is how long a freed address rests before reuse
	// (WG_ADDRESS_QUARANTINE).
	Quarantine time.Duration
	// RenewalGrace is how long after expiry a renewal restores the same
	// peers and addresses (RENEWAL_GRACE); later, it issues a new device.
	RenewalGrace time.Duration
	// ReminderDays are the days before expiry users are reminded.
	ReminderDays []int
	// NodeDownAfter is how long a server's node may be silent before the
	// stats call it down (NODE_DOWN_AFTER; zero: 30s).
	NodeDownAfter time.Duration
	// Referral is the bonus days each side of a referral gets when the
	// invited user's first payment is credited (REFERRAL_BONUS_DAYS).
	Referral wgbot.ReferralBonus
}

// NewStore returns a Store. outbox is the insert-only River client
// (jobs.NewOutbox) the store inserts follow-up jobs with, in the
// transaction of the change they follow; with nil it inserts none (tests,
// dry runs).
func NewStore(pool *pgxpool.Pool, opts Options, outbox *river.Client[pgx.Tx]) *Store {
	if opts.NodeDownAfter <= 0 {
		opts.NodeDownAfter = 30 * time.Second
	}
	return &Store{pool: pool, lockID: opts.LockID, quarantine: opts.Quarantine,
		jobs: outbox, reminderDays: opts.ReminderDays, renewalGrace: opts.RenewalGrace, nodeDownAfter: opts.NodeDownAfter,
		referral: opts.Referral}
}

const userColumns = `id, telegram_id, username, first_name, language, COALESCE(referrer_id, 0), blocked_bot, banned, created_at`

// errRetry asks retryTx to run the whole transaction again.
var errRetry = errors.New("retry transaction")

// RenewalGrace is how long after expiry a renewal restores the same
// peers (0: always), for the rule wgbot.Renew.
func (s *Store) RenewalGrace() time.Duration { return s.renewalGrace }

// Referral is the referral bonus days each side gets (REFERRAL_BONUS_DAYS).
func (s *Store) Referral() wgbot.ReferralBonus { return s.referral }
