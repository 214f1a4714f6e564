package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// Stats reads the operator's overview at now: the state now and, for each
// of since, what happened from then until now. Revenue counts payments by
// when they were credited, net of refunds (a refunded payment counts
// nothing) and of discounts (a payment is what the provider charged; the
// discounts are listed apart); ledger rows that are no money (referral
// bonuses, promo days) count as neither revenue nor payments; a window's trial converted if its user has a payment credited
// after the trial started. Failed payments are orders the provider
// cancelled or that expired unpaid; one a newer order of its user
// replaced is not counted. A trial paid for while live becomes the paid
// plan (is_trial stays, as history), so a live trial is one still on the
// trial plan.
func (s *Store) Stats(ctx context.Context, now time.Time, since []time.Time) (wgbot.Stats, error) {
	var st wgbot.Stats
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users),
		(SELECT count(*) FROM subscriptions WHERE status = 'active'),
		(SELECT count(*) FROM subscriptions WHERE status = 'active' AND plan = $3),
		(SELECT count(*) FROM subscriptions WHERE status = 'active' AND expires_at <= $1::timestamptz + $2::interval),
		(SELECT count(*) FROM orders WHERE status = 'pending' AND expires_at > $1)`,
		now, wgbot.StatsExpiringWithin, wgbot.TrialPlanName).Scan(&st.Users, &st.ActiveSubscriptions, &st.ActiveTrials, &st.ExpiringSoon, &st.PendingPayments)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	// Servers whose node went silent come first.
	rows, err := s.pool.Query(ctx, `SELECT sv.name, `+ServerActivePeers+`, sv.state = 'draining',
			coalesce(n.seen_at < $1::timestamptz - $2::interval, false)
		FROM servers sv LEFT JOIN node_status n ON n.server_id = sv.id
		ORDER BY 4 DESC, sv.id`, now, s.nodeDownAfter)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	if st.Servers, err = pgx.CollectRows(rows, pgx.RowToStructByPos[wgbot.ServerLoad]); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	if st.PromoCodes, st.ActivePromoCodes, err = s.promoCounts(ctx, now); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	for _, from := range since {
		w := wgbot.StatsWindow{Since: from}
		err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users WHERE created_at >= $1),
			(SELECT count(*) FROM subscriptions WHERE is_trial AND created_at >= $1),
			(SELECT count(*) FROM subscriptions t WHERE t.is_trial AND t.created_at >= $1 AND EXISTS (
				SELECT 1 FROM payments p WHERE p.user_id = t.user_id AND p.kind = 'payment' AND p.status = 'credited' AND p.applied_at >= t.created_at)),
			(SELECT count(*) FROM payments WHERE kind = 'payment' AND status = 'credited' AND applied_at >= $1),
			(SELECT count(*) FROM orders WHERE created_at >= $1 AND ((status = 'canceled' AND replaced_by IS NULL) OR (status = 'pending' AND expires_at <= $2))),
			(SELECT count(*) FROM users WHERE created_at >= $1 AND referrer_id IS NOT NULL),
			(SELECT count(*) FROM payments WHERE kind = 'referral' AND status = 'credited' AND applied_at >= $1),
			(SELECT count(*) FROM promo_redemptions WHERE created_at >= $1)`,
			from, now).Scan(&w.NewUsers, &w.TrialsStarted, &w.TrialsConverted, &w.Payments, &w.FailedPayments,
			&w.Referred, &w.ReferralBonuses, &w.PromoRedemptions)
		if err != nil {
			return st, fmt.Errorf("stats since %s: %w", from, err)
		}
		rows, err := s.pool.Query(ctx, `SELECT provider, currency, sum(amount)::bigint FROM payments
			WHERE kind = 'payment' AND status = 'credited' AND applied_at >= $1 GROUP BY provider, currency ORDER BY provider, currency`, from)
		if err != nil {
			return st, fmt.Errorf("stats since %s: %w", from, err)
		}
		if w.Revenue, err = pgx.CollectRows(rows, pgx.RowToStructByPos[wgbot.Revenue]); err != nil {
			return st, fmt.Errorf("stats since %s: %w", from, err)
		}
		rows, err = s.pool.Query(ctx, `SELECT p.provider, p.currency, sum(o.discount)::bigint FROM payments p JOIN orders o ON o.id = p.order_id
			WHERE p.kind = 'payment' AND p.status = 'credited' AND p.applied_at >= $1 AND o.discount > 0
			GROUP BY p.provider, p.currency ORDER BY p.provider, p.currency`, from)
		if err != nil {
			return st, fmt.Errorf("stats since %s: %w", from, err)
		}
		if w.Discounts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[wgbot.Revenue]); err != nil {
			return st, fmt.Errorf("stats since %s: %w", from, err)
		}
		st.Windows = append(st.Windows, w)
	}
	if st.OverQuota, err = s.OverQuota(ctx, now, wgbot.StatsOverQuota); err != nil {
		return st, err
	}
	if st.TopConsumers, err = s.TopConsumers(ctx, now, wgbot.StatsTopConsumers); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}
