package service

import (
	"context"
	"errors"

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

// EndStarRenewalOf turns off the renewal of the Stars subscription a
// refunded charge belongs to, so Telegram does not charge again for what
// was refunded: edit tells Telegram first, as in SetStarRenewal. A charge
// of no subscription, or one already off, is no error.
func (s *Service) EndStarRenewalOf(ctx context.Context, provider, chargeID string, edit func(ctx context.Context, userID int64, chargeID string) error) (bool, error) {
	sub, err := s.store.StarSubscriptionOfCharge(ctx, provider, chargeID)
	if errors.Is(err, wgbot.ErrNoStarSubscription) || (err == nil && sub.Canceled) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := edit(ctx, sub.UserID, sub.ChargeID); err != nil {
		return false, err
	}
	_, err = s.store.SetStarRenewal(ctx, sub.UserID, sub.ID, true, s.clock())
	return err == nil, err
}
