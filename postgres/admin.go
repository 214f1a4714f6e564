package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Stats is the operator's overview.
type Stats struct {
	Users               int64
	ActiveSubscriptions int64
	Trials              int64
	ActivePeers         int64
	Revenue             map[string]int64 // currency → credited minus refunded, minor units
}

// Stats counts users, subscriptions, trials, peers and revenue.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Revenue: map[string]int64{}}
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users),
		(SELECT count(*) FROM subscriptions WHERE status = 'active'),
		(SELECT count(*) FROM subscriptions WHERE is_trial),
		(SELECT count(*) FROM peers WHERE status = 'active')`).Scan(&st.Users, &st.ActiveSubscriptions, &st.Trials, &st.ActivePeers)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT currency, sum(amount)::bigint FROM payments WHERE status = 'credited' GROUP BY currency ORDER BY currency`)
	if err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	var cur string
	var sum int64
	_, err = pgx.ForEachRow(rows, []any{&cur, &sum}, func() error {
		st.Revenue[cur] = sum
		return nil
	})
	return st, err
}

// MarkBlocked records that a user blocked the bot (Telegram answered 403),
// so broadcasts and reminders skip them until they write again.
func (s *Store) MarkBlocked(ctx context.Context, telegramID int64, blocked bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE users SET blocked_bot = $2 WHERE telegram_id = $1`, telegramID, blocked)
	return err
}

// Reachable lists the Telegram ids of users who have not blocked the bot,
// for broadcasts, in id order.
func (s *Store) Reachable(ctx context.Context) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT telegram_id FROM users WHERE NOT blocked_bot ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}
