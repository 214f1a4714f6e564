package service

import (
	"context"
	"fmt"
	"time"

	"wgbot"
	"wgbot/postgres"
)

// OrderLifetime is how long a checkout is offered; a payment arriving
// later is still credited (money is never kept without giving time).
const OrderLifetime = 24 * time.Hour

// CreateOrder prices a plan in the currency and records a pending order.
func (s *Service) CreateOrder(ctx context.Context, user wgbot.User, planName, provider, currency string) (wgbot.Order, error) {
	if user.Banned {
		return wgbot.Order{}, wgbot.ErrBanned
	}
	plan, err := s.Plan(planName)
	if err != nil {
		return wgbot.Order{}, err
	}
	amount, ok := plan.Prices[currency]
	if !ok {
		return wgbot.Order{}, wgbot.Errorf(wgbot.EInvalid, "no_price", "plan %s has no price in %s", planName, currency)
	}
	now := s.clock()
	return s.store.CreateOrder(ctx, wgbot.Order{UserID: user.ID, Plan: plan.Name, Days: plan.Days, Devices: plan.Devices,
		Provider: provider, Amount: amount, Currency: currency, ExpiresAt: now.Add(OrderLifetime)})
}

// SetOrderRef records the provider's checkout id on an order.
func (s *Service) SetOrderRef(ctx context.Context, orderID int64, ref string) error {
	return s.store.SetOrderRef(ctx, orderID, ref)
}

// CancelOrder closes a pending order the provider reported canceled.
func (s *Service) CancelOrder(ctx context.Context, orderID int64) error {
	return s.store.CancelOrder(ctx, orderID)
}

// CheckOrder answers "may this user pay this much for this order now?",
// as Telegram's pre_checkout_query asks before taking Stars.
func (s *Service) CheckOrder(ctx context.Context, user wgbot.User, orderID int64, currency string, amount int64) (wgbot.Order, error) {
	if user.Banned {
		return wgbot.Order{}, wgbot.ErrBanned
	}
	o, err := s.store.Order(ctx, orderID)
	if err != nil {
		return o, err
	}
	if reason := mismatch(o, user.ID, currency, amount); reason != "" {
		return o, fmt.Errorf("order %d: %s: %w", o.ID, reason, wgbot.ErrPaymentMismatch)
	}
	if o.Status != wgbot.OrderPending {
		return o, wgbot.Errorf(wgbot.EConflict, "order_closed", "order %d is %s", o.ID, o.Status)
	}
	// An old invoice may carry an old price: ask for a new order. (A
	// payment that arrives anyway is still credited by PayOrder.)
	if s.clock().After(o.ExpiresAt) {
		return o, wgbot.Errorf(wgbot.EConflict, "order_closed", "order %d expired at %s", o.ID, o.ExpiresAt.Format(time.RFC3339))
	}
	return o, nil
}

// Payment is a provider's confirmation, already authenticated by the
// provider adapter.
type Payment struct {
	Provider          string
	ProviderPaymentID string
	OrderID           int64
	PayerUserID       int64 // 0 when the provider does not say who paid
	Amount            int64
	Currency          string
	Raw               []byte
}

// PayOrder credits a confirmed payment against its order, exactly once. A
// payment that does not match its order (user, amount, currency) is not
// credited; a payment from a banned user is credited and flagged.
func (s *Service) PayOrder(ctx context.Context, p Payment) (CreditResult, error) {
	o, err := s.store.Order(ctx, p.OrderID)
	if err != nil {
		return CreditResult{}, err
	}
	payer := p.PayerUserID
	if payer == 0 {
		payer = o.UserID
	}
	if reason := mismatch(o, payer, p.Currency, p.Amount); reason != "" {
		s.log.WarnContext(ctx, "payment refused: it does not match its order", "provider", p.Provider,
			"payment", p.ProviderPaymentID, "order", o.ID, "reason", reason)
		return CreditResult{}, fmt.Errorf("%s payment %s for order %d: %s: %w", p.Provider, p.ProviderPaymentID, o.ID, reason, wgbot.ErrPaymentMismatch)
	}
	var flag string
	if u, err := s.store.UserByID(ctx, o.UserID); err == nil && u.Banned {
		flag = "paid while banned"
	}
	return s.Credit(ctx, postgres.Credit{
		Provider: p.Provider, ProviderPaymentID: p.ProviderPaymentID, OrderID: o.ID, UserID: o.UserID,
		Amount: p.Amount, Currency: p.Currency, Raw: p.Raw, Flag: flag,
		Plan: wgbot.Plan{Name: o.Plan, Days: o.Days, Devices: o.Devices},
	})
}

func mismatch(o wgbot.Order, userID int64, currency string, amount int64) string {
	switch {
	case o.UserID != userID:
		return fmt.Sprintf("paid by user %d, ordered by user %d", userID, o.UserID)
	case o.Currency != currency:
		return fmt.Sprintf("paid in %s, ordered in %s", currency, o.Currency)
	case o.Amount != amount:
		return fmt.Sprintf("paid %d, ordered %d", amount, o.Amount)
	}
	return ""
}

// Refund reverses a credited payment once; the user loses the days it
// bought, and access ends if none are left.
func (s *Service) Refund(ctx context.Context, provider, providerPaymentID string) (postgres.RefundResult, error) {
	res, err := s.store.RefundPayment(ctx, postgres.Refund{Provider: provider, ProviderPaymentID: providerPaymentID}, s.clock())
	for _, ch := range res.Changes {
		s.provisionLater(ctx, ch)
	}
	return res, err
}

// PaymentUser is the user who made a payment (admin refunds by charge id).
func (s *Service) PaymentUser(ctx context.Context, provider, providerPaymentID string) (wgbot.User, error) {
	return s.store.PaymentUser(ctx, provider, providerPaymentID)
}

// UserByTelegramID finds a registered user.
func (s *Service) UserByTelegramID(ctx context.Context, telegramID int64) (wgbot.User, error) {
	return s.store.UserByTelegramID(ctx, telegramID)
}

// UserByUsername finds a registered user by @username.
func (s *Service) UserByUsername(ctx context.Context, username string) (wgbot.User, error) {
	return s.store.UserByUsername(ctx, username)
}

// SetLanguage stores the user's language choice.
func (s *Service) SetLanguage(ctx context.Context, user wgbot.User, lang string) error {
	return s.store.SetLanguage(ctx, user.ID, lang)
}

// Stats is the operator's overview.
func (s *Service) Stats(ctx context.Context) (postgres.Stats, error) { return s.store.Stats(ctx) }

// MarkBlocked records that the user blocked (or unblocked) the bot.
func (s *Service) MarkBlocked(ctx context.Context, telegramID int64, blocked bool) error {
	return s.store.MarkBlocked(ctx, telegramID, blocked)
}

// Reachable lists users a broadcast may be sent to.
func (s *Service) Reachable(ctx context.Context) ([]int64, error) { return s.store.Reachable(ctx) }
