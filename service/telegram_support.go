package service

import (
	"context"
	"time"
)

// ClaimTelegramUpdate reports whether this is the first time any wgbot
// process handles the bot's update updateID; Telegram may deliver an update
// more than once, and the bot must act on it once.
func (s *Service) ClaimTelegramUpdate(ctx context.Context, botID, updateID int64) (bool, error) {
	return s.store.ClaimTelegramUpdate(ctx, botID, updateID)
}

// PruneTelegramUpdates forgets claimed update ids older than retention.
func (s *Service) PruneTelegramUpdates(ctx context.Context, retention time.Duration) (int64, error) {
	return s.store.PruneTelegramUpdates(ctx, retention)
}
