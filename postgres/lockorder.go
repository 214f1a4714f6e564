package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Lock order. Every transaction that changes several users' time or
// devices takes its row and advisory locks in one fixed order, so two of
// them never wait on each other in a circle:
//
//  1. the ledger row of the credit or refund (payments, by its UNIQUE key);
//  2. the users' subscriptions, in ascending user id;
//  3. the users' rows (the device counter allocatePeer bumps), in
//     ascending user id;
//  4. the allocator's advisory lock, per server in ascending server id
//     (pg_advisory_xact_lock(DB_IP_ALLOC_LOCK_ID, server)), then the
//     server's row (its next address and revision).
//
// A single-user path (a trial, a new device, a renewal) follows it by
// construction: it locks its subscription, allocatePeer bumps the user's
// counter and then takes the allocator's lock. A path touching two users
// (a payment that earns the referrer a bonus, a refund that takes one back)
// takes steps 2 and 3 for both users up front with lockUsersTx, before it
// allocates or frees any address; the later locks of the same rows are
// then already held. retryTx still reruns a transaction PostgreSQL broke
// a deadlock of (Store.Deadlocks counts them).
//
// The order covers the rows that exist when lockUsersTx runs. A
// subscription another transaction creates and commits after that (a
// refund revoked the user's, and a payment or bonus made a new one) is
// locked later, out of order, and can still close a circle; retryTx
// reruns the aborted one, so no credit is lost or doubled, at the cost
// of deadlock_timeout. service.TestCreditsAndRefundsAcrossUsers sees 0-1
// such per run under CI load, against 2-10 with lockUsersTx skipped.
// Taking the users' rows before their subscriptions everywhere would close
// this; single-user paths take them the other way round today.

// lockUsersTx takes steps 2 and 3 of the lock order for userIDs (zeros
// and repeats ignored): their live and ended subscriptions, then their
// user rows, each in ascending id.
func lockUsersTx(ctx context.Context, tx pgx.Tx, userIDs ...int64) error {
	ids := make([]int64, 0, len(userIDs))
	for _, id := range userIDs {
		if id != 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT id FROM subscriptions WHERE user_id = ANY($1) AND status <> 'revoked'
		ORDER BY user_id, id FOR UPDATE`, ids); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids)
	return err
}
