package postgres

import (
	"context"
	"fmt"
	"time"
)

// ClaimTelegramUpdate records that the bot botID is handling updateID and
// reports whether this call was the first to do so. The primary key makes
// the claim atomic across goroutines, processes and restarts.
func (s *Store) ClaimTelegramUpdate(ctx context.Context, botID, updateID int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO telegram_updates (bot_id, update_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, botID, updateID)
	if err != nil {
		return false, fmt.Errorf("claim telegram update %d: %w", updateID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// PruneTelegramUpdates forgets update ids seen more than retention ago and
// returns how many were removed. Telegram does not redeliver updates that
// old. The database's clock decides both ends, as it stamped seen_at.
func (s *Store) PruneTelegramUpdates(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM telegram_updates WHERE seen_at < now() - $1::interval`, retention)
	if err != nil {
		return 0, fmt.Errorf("prune telegram updates: %w", err)
	}
	return tag.RowsAffected(), nil
}
