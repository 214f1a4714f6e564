package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
	"wgbot/jobs/jobargs"
)

// quotaColumns are a subscription's quota for month $2 as wgbot.Quota
// scans them (scanQuota), from subscriptions s and users us (LEFT JOIN).
// A quota of 0 is unlimited, whatever was topped up.
const quotaColumns = `s.id, coalesce(s.user_id, 0), coalesce(us.telegram_id, 0), coalesce(us.username, ''),
	CASE WHEN s.traffic_quota = 0 THEN 0 ELSE s.traffic_quota +
		coalesce((SELECT sum(t.bytes) FROM traffic_topups t WHERE t.subscription_id = s.id AND t.month = $2), 0)::bigint END,
	coalesce((SELECT sum(u.rx + u.tx) FROM peer_usage u JOIN peers p ON p.id = u.peer_id
		WHERE p.subscription_id = s.id AND u.month = $2), 0)::bigint,
	EXISTS (SELECT 1 FROM peers p WHERE p.subscription_id = s.id AND p.status = 'disabled' AND p.disabled_reason = 'quota')`

func scanQuota(row pgx.CollectableRow, m time.Time) (wgbot.Quota, error) {
	q := wgbot.Quota{Month: m}
	err := row.Scan(&q.SubscriptionID, &q.UserID, &q.TelegramID, &q.Username, &q.Allowance, &q.Used, &q.Disabled)
	return q, err
}

// SubscriptionQuota is subscription subID's allowance and traffic in the
// month holding at.
func (s *Store) SubscriptionQuota(ctx context.Context, subID int64, at time.Time) (wgbot.Quota, error) {
	m := month(at)
	rows, err := s.pool.Query(ctx, `SELECT `+quotaColumns+` FROM subscriptions s LEFT JOIN users us ON us.id = s.user_id
		WHERE s.id = $1`, subID, m)
	if err != nil {
		return wgbot.Quota{}, fmt.Errorf("quota of subscription %d: %w", subID, err)
	}
	q, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (wgbot.Quota, error) { return scanQuota(row, m) })
	if errors.Is(err, pgx.ErrNoRows) {
		return q, wgbot.ErrNoSubscription
	}
	if err != nil {
		return q, fmt.Errorf("quota of subscription %d: %w", subID, err)
	}
	return q, nil
}

// OverQuota lists the live subscriptions whose traffic in the month
// holding now reached their allowance, most used first, at most limit.
func (s *Store) OverQuota(ctx context.Context, now time.Time, limit int) ([]wgbot.Quota, error) {
	m := month(now)
	rows, err := s.pool.Query(ctx, `SELECT * FROM (SELECT `+quotaColumns+` FROM subscriptions s LEFT JOIN users us ON us.id = s.user_id
			WHERE s.status = 'active' AND s.traffic_quota > 0) q (id, user_id, telegram_id, username, allowance, used, disabled)
		WHERE used >= allowance ORDER BY used DESC, id LIMIT $1`, limit, m)
	if err != nil {
		return nil, fmt.Errorf("subscriptions over quota: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (wgbot.Quota, error) { return scanQuota(row, m) })
	if err != nil {
		return nil, fmt.Errorf("subscriptions over quota: %w", err)
	}
	return list, nil
}

// EnforceQuotas is the quota check: for every live subscription with a
// quota (or with devices the quota switched off), it compares this
// month's traffic with the allowance; it queues the 80% and 100% notices
// not queued yet, switches off the devices of a subscription at 100%
// (status disabled, reason quota: their keys and addresses are kept), and
// switches back on those of one below it again (a new month, a top-up, a
// larger plan). The status change goes through the change log, so the
// reconcilers take the devices off and put them back. Safe with several
// processes at once: SKIP LOCKED hands each subscription to one of them
// per pass, and the notices' UNIQUE key queues each once.
func (s *Store) EnforceQuotas(ctx context.Context, now time.Time) (wgbot.QuotaCheck, error) {
	var res wgbot.QuotaCheck
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = s.enforceQuotasTx(ctx, tx, nil, now)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("enforce traffic quotas: %w", err)
	}
	return res, nil
}

// enforceQuotasTx is EnforceQuotas for the subscriptions ids (nil: all),
// inside tx. The subscriptions are locked first, in one statement, and
// their traffic and top-ups read in the next: under READ COMMITTED that
// one reads what committed before it began, so a top-up that held a
// subscription's lock (a credit locks it) is seen, never half.
func (s *Store) enforceQuotasTx(ctx context.Context, tx pgx.Tx, ids []int64, now time.Time) (wgbot.QuotaCheck, error) {
	var res wgbot.QuotaCheck
	// The candidates come from the two partial indexes (subscriptions_quota,
	// peers_quota_disabled), so a pass reads only subscriptions with a
	// quota, never every live one.
	rows, err := tx.Query(ctx, `SELECT id FROM subscriptions WHERE status = 'active'
			AND id IN (SELECT id FROM subscriptions WHERE status = 'active' AND traffic_quota > 0
				UNION SELECT subscription_id FROM peers WHERE status = 'disabled' AND disabled_reason = 'quota')
			AND ($1::bigint[] IS NULL OR id = ANY($1))
		ORDER BY id FOR UPDATE SKIP LOCKED`, ids)
	if err != nil {
		return res, err
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(locked) == 0 {
		return res, err
	}
	m := month(now)
	rows, err = tx.Query(ctx, `SELECT `+quotaColumns+` FROM subscriptions s LEFT JOIN users us ON us.id = s.user_id
		WHERE s.id = ANY($1) ORDER BY s.id`, locked, m)
	if err != nil {
		return res, err
	}
	quotas, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (wgbot.Quota, error) { return scanQuota(row, m) })
	if err != nil {
		return res, err
	}
	var full, under []int64
	var notices []jobargs.QuotaNotice
	for _, q := range quotas {
		level := q.Level()
		if level == wgbot.QuotaFull {
			full = append(full, q.SubscriptionID)
		} else {
			under = append(under, q.SubscriptionID)
		}
		if level == 0 || q.UserID == 0 {
			continue
		}
		// Crossing both levels in one pass tells only the higher; the
		// lower is recorded as told, so it never comes after it.
		if level == wgbot.QuotaFull {
			notices = append(notices, jobargs.QuotaNotice{SubscriptionID: q.SubscriptionID, Month: m, Allowance: q.Allowance, Level: wgbot.QuotaWarn})
		}
		notices = append(notices, jobargs.QuotaNotice{SubscriptionID: q.SubscriptionID, Month: m, Allowance: q.Allowance, Level: level})
	}
	if res.Notices, err = s.queueQuotaNoticesTx(ctx, tx, notices, now); err != nil {
		return res, err
	}
	servers := map[int64]bool{}
	if res.Disabled, err = setQuotaPeersTx(ctx, tx, servers, full, `UPDATE peers SET status = 'disabled', disabled_reason = 'quota', disabled_at = $2
		WHERE subscription_id = ANY($1) AND status = 'active' RETURNING server_id`, full, now); err != nil {
		return res, err
	}
	if res.Enabled, err = setQuotaPeersTx(ctx, tx, servers, under, `UPDATE peers SET status = 'active', disabled_reason = NULL, disabled_at = NULL
		WHERE subscription_id = ANY($1) AND status = 'disabled' AND disabled_reason = 'quota' RETURNING server_id`, under); err != nil {
		return res, err
	}
	touched := make([]int64, 0, len(servers))
	for id := range servers {
		touched = append(touched, id)
	}
	// Servers in id order: two checks bump them in the same order.
	slices.Sort(touched)
	res.Changes, err = bumpRevisions(ctx, tx, touched)
	return res, err
}

// queueQuotaNoticesTx records the notices not recorded yet and queues a
// job for each that is not a lower level recorded with a higher one.
func (s *Store) queueQuotaNoticesTx(ctx context.Context, tx pgx.Tx, notices []jobargs.QuotaNotice, now time.Time) (int, error) {
	if len(notices) == 0 {
		return 0, nil
	}
	subs := make([]int64, len(notices))
	allowances := make([]int64, len(notices))
	levels := make([]int32, len(notices))
	for i, n := range notices {
		subs[i], allowances[i], levels[i] = n.SubscriptionID, n.Allowance, int32(n.Level)
	}
	rows, err := tx.Query(ctx, `INSERT INTO quota_notices (subscription_id, month, allowance, level, queued_at)
		SELECT sub, $4, allowance, level, $5 FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS n (sub, allowance, level)
		ORDER BY sub, level
		ON CONFLICT DO NOTHING RETURNING subscription_id, level`, subs, allowances, levels, notices[0].Month, now)
	if err != nil {
		return 0, err
	}
	type key struct {
		sub   int64
		level int
	}
	fresh := map[key]bool{}
	var k key
	if _, err := pgx.ForEachRow(rows, []any{&k.sub, &k.level}, func() error { fresh[k] = true; return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, a := range notices {
		if !fresh[key{a.SubscriptionID, a.Level}] || (a.Level == wgbot.QuotaWarn && fresh[key{a.SubscriptionID, wgbot.QuotaFull}]) {
			continue
		}
		if err := s.insertJob(ctx, tx, a, nil); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// setQuotaPeersTx runs one of the quota check's peer updates, unless it
// is for no subscriptions, and adds the servers it touched; it returns
// how many peers it changed.
func setQuotaPeersTx(ctx context.Context, tx pgx.Tx, servers map[int64]bool, subs []int64, update string, args ...any) (int, error) {
	if len(subs) == 0 {
		return 0, nil
	}
	rows, err := tx.Query(ctx, update, args...)
	if err != nil {
		return 0, err
	}
	touched, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	for _, id := range touched {
		servers[id] = true
	}
	return len(touched), err
}

// creditTopUpTx applies a credited top-up payment: its bytes go to the
// current month of the user's live subscription (else their latest one,
// which a renewal this month brings back), and the quota check runs for
// that subscription at once, so devices switched off come back in the
// payment's own transaction. A user with no subscription at all has the
// payment flagged: the money is recorded, an operator decides.
func (s *Store) creditTopUpTx(ctx context.Context, tx pgx.Tx, c wgbot.Credit, res *wgbot.CreditResult, now time.Time) error {
	sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
		WHERE user_id = $1 AND status <> 'revoked' ORDER BY status = 'active' DESC, expires_at DESC LIMIT 1 FOR UPDATE`, c.UserID))
	if errors.Is(err, wgbot.ErrNoSubscription) {
		_, err = tx.Exec(ctx, `UPDATE payments SET flagged = CASE WHEN flagged = '' THEN $2 ELSE flagged END WHERE id = $1`,
			res.PaymentID, "top-up paid with no subscription to add it to")
		return err
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO traffic_topups (payment_id, subscription_id, month, bytes, created_at) VALUES ($1, $2, $3, $4, $5)`,
		res.PaymentID, sub.ID, month(now), c.Traffic, now); err != nil {
		return err
	}
	check, err := s.enforceQuotasTx(ctx, tx, []int64{sub.ID}, now)
	if err != nil {
		return err
	}
	res.Subscription, res.TopUp = sub, c.Traffic
	if len(check.Changes) > 0 {
		res.Change = check.Changes[len(check.Changes)-1]
	}
	return s.insertJob(ctx, tx, jobargs.PaymentCredited{PaymentID: res.PaymentID}, nil)
}

// setPlanQuotaTx gives the subscription a paid plan's monthly quota (the
// order's copy of it) and runs the quota check for it, so an upgrade to a
// larger quota brings switched-off devices back at once.
func (s *Store) setPlanQuotaTx(ctx context.Context, tx pgx.Tx, subID, quota int64, now time.Time) ([]wgbot.Change, error) {
	if _, err := tx.Exec(ctx, `UPDATE subscriptions SET traffic_quota = $2 WHERE id = $1`, subID, quota); err != nil {
		return nil, err
	}
	check, err := s.enforceQuotasTx(ctx, tx, []int64{subID}, now)
	return check.Changes, err
}
