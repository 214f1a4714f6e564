package postgres

import (
	"context"
	"fmt"
	"time"
)

// UpdateRedeliveryWindow is how long a handled update id is remembered.
// Telegram delivers an update again only until the bot confirms it (the
// next getUpdates offset, or a webhook's 2xx), and keeps an unconfirmed
// update for 24 hours; an hour's margin covers clocks and retries. Past
// the window an id seen before is a new update: Telegram starts its ids
// afresh after a week without updates, and an emulator may restart them.
const UpdateRedeliveryWindow = 25 * time.Hour

// ClaimTelegramUpdate records that the bot botID is handling updateID and
// reports whether this call was the first to do so within
// UpdateRedeliveryWindow. The primary key makes the claim atomic across
// goroutines, processes and restarts; a row older than the window is taken
// over, whether or not PruneTelegramUpdates has removed it yet.
func (s *Store) ClaimTelegramUpdate(ctx context.Context, botID, updateID int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO telegram_updates (bot_id, update_id) VALUES ($1, $2)
		ON CONFLICT (bot_id, update_id) DO UPDATE SET seen_at = now()
		WHERE telegram_updates.seen_at < now() - $3::interval`, botID, updateID, UpdateRedeliveryWindow)
	if err != nil {
		return false, fmt.Errorf("claim telegram update %d: %w", updateID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// PruneTelegramUpdates forgets update ids seen more than retention ago and
// returns how many were removed, to keep the table small; a claim already
// ignores rows older than UpdateRedeliveryWindow. The database's clock
// decides both ends, as it stamped seen_at.
func (s *Store) PruneTelegramUpdates(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM telegram_updates WHERE seen_at < now() - $1::interval`, retention)
	if err != nil {
		return 0, fmt.Errorf("prune telegram updates: %w", err)
	}
	return tag.RowsAffected(), nil
}

// LatestTelegramUpdate returns the highest update id the bot botID claimed
// within UpdateRedeliveryWindow, 0 if none: ids at or below it would be
// taken for redeliveries, so an emulator starting afresh on this database
// begins after it.
func (s *Store) LatestTelegramUpdate(ctx context.Context, botID int64) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(update_id), 0) FROM telegram_updates
		WHERE bot_id = $1 AND seen_at >= now() - $2::interval`, botID, UpdateRedeliveryWindow).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("latest telegram update: %w", err)
	}
	return id, nil
}
