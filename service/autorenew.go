package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"wgbot"
	"wgbot/postgres"
)

// SaveAutorenewal keeps the card a user paid with, after they agreed to
// renewals from it at checkout.
func (s *Service) SaveAutorenewal(ctx context.Context, a postgres.Autorenewal) error {
	return s.store.SaveAutorenewal(ctx, a)
}

// CancelAutorenewal is the user's Cancel: no further charges. It reports
// whether renewals were on.
func (s *Service) CancelAutorenewal(ctx context.Context, user wgbot.User) (bool, error) {
	return s.store.CancelAutorenewal(ctx, user.ID)
}

// Renewal is the charge a saved card is due for, claimed for its period.
type Renewal struct {
	Card   postgres.Autorenewal
	Charge postgres.RenewalCharge
	Order  wgbot.Order
}

// ClaimRenewal finds the user's saved card for provider and claims the
// charge of their current period (the active subscription's expiry) once
// it ends within before. ok is false when there is nothing to charge:
// renewals off, no subscription, or not due yet.
// A period claimed before comes back as it stands: the caller asks the
// provider again only while it is pending, with the same key.
func (s *Service) ClaimRenewal(ctx context.Context, userID int64, provider, currency string, before time.Duration) (Renewal, bool, error) {
	card, on, err := s.store.ActiveAutorenewal(ctx, userID)
	if err != nil || !on || card.Provider != provider {
		return Renewal{}, false, err
	}
	sub, err := s.store.ActiveSubscription(ctx, userID)
	if errors.Is(err, wgbot.ErrNoSubscription) {
		return Renewal{}, false, nil
	}
	if err != nil {
		return Renewal{}, false, err
	}
	if sub.ExpiresAt.After(s.clock().Add(before)) {
		return Renewal{}, false, nil
	}
	user, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return Renewal{}, false, err
	}
	order, err := s.CreateOrder(ctx, user, card.Plan, provider, currency)
	if err != nil {
		return Renewal{}, false, fmt.Errorf("renewal order of user %d: %w", userID, err)
	}
	charge, err := s.store.ClaimRenewalCharge(ctx, userID, sub.ExpiresAt, order.ID)
	if err != nil {
		return Renewal{}, false, fmt.Errorf("claim renewal of user %d: %w", userID, err)
	}
	if charge.OrderID != order.ID {
		if order, err = s.store.Order(ctx, charge.OrderID); err != nil {
			return Renewal{}, false, err
		}
	}
	return Renewal{Card: card, Charge: charge, Order: order}, true, nil
}

// FailRenewal records a charge that did not renew, once: its order is
// canceled, a card refused for good is not charged again, and the user is
// told by a notice whose words fit the outcome (wgbot.RenewalFailure),
// with a button to pay by hand (I9). It reports whether this call
// recorded it.
func (s *Service) FailRenewal(ctx context.Context, c postgres.RenewalCharge) (bool, error) {
	return s.store.FailRenewalCharge(ctx, c)
}

// NoteRenewalPending records the provider's payment of a charge it has
// not decided yet.
func (s *Service) NoteRenewalPending(ctx context.Context, c postgres.RenewalCharge) error {
	return s.store.NoteRenewalPending(ctx, c)
}

// SucceedRenewal records a charge that went through; the money itself is
// credited by PayOrder under the payment's own UNIQUE key.
func (s *Service) SucceedRenewal(ctx context.Context, c postgres.RenewalCharge) error {
	c.Status = "succeeded"
	_, err := s.store.FinishRenewalCharge(ctx, c)
	return err
}

// DueRenewals lists the users whose saved card is due to be charged
// within before.
func (s *Service) DueRenewals(ctx context.Context, provider string, before time.Duration) ([]int64, error) {
	return s.store.DueAutorenewals(ctx, provider, s.clock().Add(before))
}

// SetAutorenew is the user's /autorenew on|off: on, the next card payment
// saves the card for renewals; off, no card is saved and the saved one is
// never charged again.
func (s *Service) SetAutorenew(ctx context.Context, user wgbot.User, on bool) error {
	return s.store.SetAutorenewConsent(ctx, user.ID, on)
}

// SetCheckoutConsent records the user's tick (or untick) of "renew
// automatically with this card" on a checkout screen: the next card order
// saves its card, or does not. Unlike /autorenew off it leaves a card
// saved before alone: unticking means "not this card", and the Cancel of
// renewals is in "My subscription".
func (s *Service) SetCheckoutConsent(ctx context.Context, user wgbot.User, on bool) error {
	return s.store.SetCheckoutConsent(ctx, user.ID, on)
}

// AutorenewConsent says whether the user agreed to renewals from a card.
func (s *Service) AutorenewConsent(ctx context.Context, userID int64) (bool, error) {
	return s.store.AutorenewConsent(ctx, userID)
}
