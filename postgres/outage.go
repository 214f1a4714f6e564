package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
	"wgbot/jobs/jobargs"
)

// SettleOutages settles every ended outage of a server's node (recorded
// by the node when it came back, see ReportNode) that no process settled
// yet, each in its own transaction: one that lasted at least after gives
// each affected subscription the credit wgbot.OutageCredit says, any
// other is settled with none (after 0: crediting is off). The outage's
// row lock (SKIP LOCKED) lets several serve processes settle at once,
// each outage by one of them; the ledger's UNIQUE key is the last guard.
// It returns how many subscriptions it credited.
func (s *Store) SettleOutages(ctx context.Context, after time.Duration, now time.Time) (int, error) {
	credited := 0
	for {
		var n int
		var settled bool
		err := s.retryTx(ctx, func(tx pgx.Tx) error {
			var err error
			n, settled, err = s.settleOutageTx(ctx, tx, after, now)
			return err
		})
		if err != nil {
			return credited, fmt.Errorf("settle outages: %w", err)
		}
		if !settled {
			return credited, nil
		}
		credited += n
	}
}

// settleOutageTx settles the oldest unsettled outage no other transaction
// holds; settled is false when there is none. The claim is an UPDATE
// whose own WHERE is checked again on the row as another settler left
// it: a SELECT … FOR UPDATE on the partial index alone could return a row
// settled meanwhile, its predicate not checked again.
func (s *Store) settleOutageTx(ctx context.Context, tx pgx.Tx, after time.Duration, now time.Time) (credited int, settled bool, err error) {
	var o wgbot.Outage
	err = tx.QueryRow(ctx, `WITH claimed AS (
			UPDATE server_outages SET settled_at = $1
			WHERE id = (SELECT id FROM server_outages WHERE settled_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
			  AND settled_at IS NULL
			RETURNING id, server_id, started_at, ended_at)
		SELECT c.id, c.server_id, coalesce(nullif(sv.location, ''), sv.name), c.started_at, c.ended_at
		FROM claimed c JOIN servers sv ON sv.id = c.server_id`, now).
		Scan(&o.ID, &o.ServerID, &o.Location, &o.StartedAt, &o.EndedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	credit := wgbot.OutageCredit(o.Downtime(), after)
	if credit > 0 {
		if credited, err = s.creditOutageTx(ctx, tx, o, credit, now); err != nil {
			return 0, false, fmt.Errorf("credit outage %d of server %d: %w", o.ID, o.ServerID, err)
		}
	}
	_, err = tx.Exec(ctx, `UPDATE server_outages SET credit = $2, subscriptions = $3 WHERE id = $1`, o.ID, credit, credited)
	return credited, true, err
}

// creditOutageTx extends every live subscription that had a device (a
// peer not revoked) on the outage's server when it began, by credit, as a ledger row each
// (keyed outage:<outage id>:<subscription id>, with credited_until the
// new expiry), and queues each user's message, in one statement plus the
// jobs. Subscriptions are locked in id order, as a payment locks its one.
func (s *Store) creditOutageTx(ctx context.Context, tx pgx.Tx, o wgbot.Outage, credit time.Duration, now time.Time) (int, error) {
	prefix := "outage:" + strconv.FormatInt(o.ID, 10) + ":"
	rows, err := tx.Query(ctx, `WITH affected AS (
			SELECT s.id, s.user_id, s.expires_at FROM subscriptions s
			WHERE s.status = 'active' AND s.expires_at > $5
			  AND EXISTS (SELECT 1 FROM peers p WHERE p.subscription_id = s.id AND p.server_id = $1
				AND p.created_at <= $2 AND (p.revoked_at IS NULL OR p.revoked_at > $2))
			ORDER BY s.id FOR UPDATE OF s),
		ledger AS (
			INSERT INTO payments (provider, provider_payment_id, user_id, amount, currency, status, days, kind, credited_until, applied_at)
			SELECT $3, $4 || a.id, a.user_id, 0, '', 'credited', 0, $6, a.expires_at + $7::interval, $5 FROM affected a
			ON CONFLICT (provider, provider_payment_id) DO NOTHING
			RETURNING provider_payment_id, credited_until)
		UPDATE subscriptions s SET expires_at = l.credited_until, updated_at = $5
		FROM ledger l WHERE l.provider_payment_id = $4 || s.id
		RETURNING s.id, s.user_id IS NOT NULL`,
		o.ServerID, o.StartedAt, wgbot.ProviderOutage, prefix, now, wgbot.LedgerOutage, credit)
	if err != nil {
		return 0, err
	}
	type extended struct {
		sub     int64
		hasUser bool
	}
	done, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (extended, error) {
		var e extended
		return e, r.Scan(&e.sub, &e.hasUser)
	})
	if err != nil {
		return 0, err
	}
	minutes := int(credit / wgbot.OutageCreditUnit)
	for _, e := range done {
		if !e.hasUser {
			continue // an imported device nobody claimed: no one to tell
		}
		if err := s.insertJob(ctx, tx, jobargs.OutageCredited{OutageID: o.ID, SubscriptionID: e.sub, Location: o.Location, Minutes: minutes}, nil); err != nil {
			return 0, err
		}
	}
	return len(done), nil
}
