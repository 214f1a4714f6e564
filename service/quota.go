package service

import (
	"context"
	"errors"
	"time"

	"wgbot"
)

// canTopUp says whether the user may order a top-up: only for their own
// live subscription, and one with a quota (an unlimited one has nothing
// to top up). A payment arriving anyway is still credited (CreditPayment).
func (s *Service) canTopUp(ctx context.Context, user wgbot.User, gift bool) error {
	if gift {
		return wgbot.Errorf(wgbot.EInvalid, wgbot.ErrUnknownPlan.Reason, "a top-up cannot be a gift")
	}
	q, err := s.Quota(ctx, user)
	if err != nil {
		return err
	}
	if q.Allowance == 0 {
		return wgbot.Errorf(wgbot.ENotFound, wgbot.ErrNoSubscription.Reason, "user %d has no subscription with a traffic quota", user.ID)
	}
	return nil
}

// Quota is the user's live subscription's traffic allowance and use this
// month; ErrNoSubscription without a live one.
func (s *Service) Quota(ctx context.Context, user wgbot.User) (wgbot.Quota, error) {
	sub, err := s.store.ActiveSubscription(ctx, user.ID)
	if err != nil {
		return wgbot.Quota{}, err
	}
	return s.store.SubscriptionQuota(ctx, sub.ID, s.clock())
}

// EnforceQuotas runs the quota check (the store's rule): notices at 80%
// and 100%, devices off at 100% and back on below it. What it changed
// goes to the VPN servers through their reconcilers.
func (s *Service) EnforceQuotas(ctx context.Context) (wgbot.QuotaCheck, error) {
	res, err := s.store.EnforceQuotas(ctx, s.clock())
	for _, ch := range res.Changes {
		s.provisionLater(ctx, ch)
	}
	return res, err
}

// QuotaNotice is what a quota notice job tells: the user and their
// subscription's quota now. ok is false when there is nothing to tell: the
// subscription ended, the month is over, or a top-up or a larger plan
// since took the traffic below the level.
func (s *Service) QuotaNotice(ctx context.Context, subID int64, month time.Time, level int) (user wgbot.User, q wgbot.Quota, ok bool, err error) {
	user, sub, err := s.store.SubscriptionNotice(ctx, subID)
	if errors.Is(err, wgbot.ErrNoSubscription) {
		return user, q, false, nil
	}
	if err != nil {
		return user, q, false, err
	}
	if q, err = s.store.SubscriptionQuota(ctx, subID, s.clock()); err != nil {
		return user, q, false, err
	}
	return user, q, sub.Status == wgbot.SubscriptionActive && q.Month.Equal(month) && q.Level() >= level, nil
}
