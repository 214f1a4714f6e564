package service

import (
	"context"

	"wgbot"
)

// StarSubscription returns the user's live auto-renewing Stars
// subscription, or wgbot.ErrNoStarSubscription.
func (s *Service) StarSubscription(ctx context.Context, user wgbot.User) (wgbot.StarSubscription, error) {
	return s.store.StarSubscription(ctx, user.ID, s.clock())
}

// SetStarRenewal turns renewal of the user's live Stars subscription off
// (canceled) or on again. edit tells Telegram first (with the
// subscription's charge id): the record follows what Telegram accepted,
// so a failed call changes nothing and the user can press again.
func (s *Service) SetStarRenewal(ctx context.Context, user wgbot.User, canceled bool, edit func(ctx context.Context, chargeID string) error) (wgbot.StarSubscription, error) {
	sub, err := s.StarSubscription(ctx, user)
	if err != nil {
		return sub, err
	}
	if sub.Canceled == canceled {
		return sub, nil // a second press: already so
	}
	if err := edit(ctx, sub.ChargeID); err != nil {
		return sub, err
	}
	return s.store.SetStarRenewal(ctx, user.ID, sub.ID, canceled, s.clock())
}
