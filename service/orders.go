package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"wgbot"
	"wgbot/postgres"
)

// CreateOrder prices a plan in the currency and returns the user's open
// order for it, or records a new pending one.
func (s *Service) CreateOrder(ctx context.Context, user wgbot.User, planName, provider, currency string) (wgbot.Order, error) {
	return s.createOrder(ctx, user, planName, provider, currency, false, false)
}

// CreateCheckoutOrder is CreateOrder for a card checkout: saveCard is the
// payer's consent, given on the checkout screen, to renewals from the card
// they pay this order with. The choice is part of the order, so an open
// order made with the other choice is not reused.
func (s *Service) CreateCheckoutOrder(ctx context.Context, user wgbot.User, planName, provider, currency string, saveCard bool) (wgbot.Order, error) {
	return s.createOrder(ctx, user, planName, provider, currency, false, saveCard)
}

// CreateGiftOrder opens an order for plan bought as a gift: its payment
// makes a one-time link instead of extending the buyer.
func (s *Service) CreateGiftOrder(ctx context.Context, user wgbot.User, planName, provider, currency string) (wgbot.Order, error) {
	return s.createOrder(ctx, user, planName, provider, currency, true, false)
}

func (s *Service) createOrder(ctx context.Context, user wgbot.User, planName, provider, currency string, gift, saveCard bool) (wgbot.Order, error) {
	if user.Banned {
		return wgbot.Order{}, wgbot.ErrBanned
	}
	plan, err := s.Plan(planName)
	if err != nil {
		return wgbot.Order{}, err
	}
	amount, ok := plan.Prices[currency]
	if !ok {
		return wgbot.Order{}, wgbot.Errorf(wgbot.EInvalid, wgbot.ErrNoPrice.Reason, "plan %s has no price in %s", planName, currency)
	}
	traffic := plan.QuotaBytes()
	if plan.IsTopUp() {
		if err := s.canTopUp(ctx, user, gift); err != nil {
			return wgbot.Order{}, err
		}
		traffic = plan.TopUpBytes()
	}
	now := s.clock()
	o, _, err := s.store.OpenOrder(ctx, wgbot.Order{UserID: user.ID, Plan: plan.Name, Days: plan.Days, Devices: plan.Devices,
		Provider: provider, Amount: amount, Currency: currency, ExpiresAt: now.Add(wgbot.OrderLifetime), Gift: gift,
		Traffic: traffic, TopUp: plan.IsTopUp(), SaveCard: saveCard && !plan.IsTopUp()},
		postgres.OpenOrders{ReuseAfter: now.Add(-wgbot.OrderReuseFor), Max: wgbot.MaxOpenOrders}, now)
	return o, err
}

// checkoutLease bounds how long one caller may take creating a checkout
// before another may try (the providers' clients time out at 30 s).
const checkoutLease = 45 * time.Second

// errCheckoutBusy: another process is creating this order's checkout and
// did not finish in the wait.
var errCheckoutBusy = &wgbot.Error{Code: wgbot.EUnavailable, Reason: "checkout_busy", Message: "the payment page is still being created"}

// Checkout returns the order's payment URL, calling start to create the
// provider's checkout only if the order has none: a second press, a retry
// after a failure, or a press handled by another process at the same
// moment shows the same checkout. start sees the order with CheckoutTries;
// above one, an earlier attempt may have created a checkout whose answer
// was lost. wait bounds how long to wait for another caller's attempt.
// An order canceled meanwhile (the user's presses for other plans pushed it
// out of the open ones) gets no checkout: the user's open order for the
// same plan, or a new one, is used instead, once. Any other closed order is
// a conflict (wgbot.ErrOrderClosed).
func (s *Service) Checkout(ctx context.Context, orderID int64, wait time.Duration, start func(wgbot.Order) (string, error)) (string, error) {
	waited := time.NewTimer(wait)
	defer waited.Stop()
	reopened := false
	for {
		o, claimed, err := s.store.ClaimCheckout(ctx, orderID, checkoutLease)
		switch {
		case errors.Is(err, wgbot.ErrOrderClosed) && o.Status == wgbot.OrderCanceled && !reopened:
			reopened = true
			if orderID, err = s.reopenOrder(ctx, o); err != nil {
				return "", err
			}
			continue
		case err != nil:
			return "", err
		case o.CheckoutURL != "":
			return o.CheckoutURL, nil
		case claimed:
			url, err := start(o)
			if err == nil && url == "" {
				err = fmt.Errorf("checkout of order %d has no URL", o.ID)
			}
			if err != nil {
				url = "" // the next press tries again
			}
			if serr := s.store.SetCheckout(context.WithoutCancel(ctx), o.ID, url); err == nil {
				err = serr
			}
			return url, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-waited.C:
			return "", fmt.Errorf("order %d: %w", orderID, errCheckoutBusy)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reopenOrder returns the id of the user's open order for a canceled
// order's plan, provider and currency, opening a new one if there is none.
func (s *Service) reopenOrder(ctx context.Context, canceled wgbot.Order) (int64, error) {
	user, err := s.store.UserByID(ctx, canceled.UserID)
	if err != nil {
		return 0, fmt.Errorf("reopen order %d: %w", canceled.ID, err)
	}
	o, err := s.CreateOrder(ctx, user, canceled.Plan, canceled.Provider, canceled.Currency)
	if err != nil {
		return 0, fmt.Errorf("reopen order %d: %w", canceled.ID, err)
	}
	return o.ID, nil
}

// SetOrderRef records the provider's checkout id on an order.
func (s *Service) SetOrderRef(ctx context.Context, orderID int64, ref string) error {
	return s.store.SetOrderRef(ctx, orderID, ref)
}

// CancelOrder closes a pending order the provider reported canceled; a
// job tells the user (CheckoutNotifier).
func (s *Service) CancelOrder(ctx context.Context, orderID int64) error {
	return s.store.CancelOrder(ctx, orderID)
}

// ExpireCheckouts closes the orders whose checkout lapsed unpaid and
// tells their users, as a cancelled checkout does.
func (s *Service) ExpireCheckouts(ctx context.Context) (int, error) {
	return s.store.ExpireOrders(ctx, s.clock())
}

// OrderNotice loads an order and its user, for a notice about it.
func (s *Service) OrderNotice(ctx context.Context, orderID int64) (wgbot.User, wgbot.Order, error) {
	return s.store.OrderNotice(ctx, orderID)
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
	if reason := o.Mismatch(user.ID, currency, amount); reason != "" {
		return o, fmt.Errorf("order %d: %s: %w", o.ID, reason, wgbot.ErrPaymentMismatch)
	}
	if o.Status != wgbot.OrderPending {
		return o, wgbot.Errorf(wgbot.EConflict, wgbot.ErrOrderClosed.Reason, "order %d is %s", o.ID, o.Status)
	}
	// An old invoice may carry an old price: ask for a new order. (A
	// payment that arrives anyway is still credited by PayOrder.)
	if s.clock().After(o.ExpiresAt) {
		return o, wgbot.Errorf(wgbot.EConflict, wgbot.ErrOrderClosed.Reason, "order %d expired at %s", o.ID, o.ExpiresAt.Format(time.RFC3339))
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
	Recurring         *wgbot.Recurring // a charge of a Stars subscription
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
	if reason := o.Mismatch(payer, p.Currency, p.Amount); reason != "" {
		s.log.WarnContext(ctx, "payment refused: it does not match its order", "provider", p.Provider,
			"payment", p.ProviderPaymentID, "order", o.ID, "reason", reason)
		return CreditResult{}, fmt.Errorf("%s payment %s for order %d: %s: %w", p.Provider, p.ProviderPaymentID, o.ID, reason, wgbot.ErrPaymentMismatch)
	}
	var flag string
	if u, err := s.store.UserByID(ctx, o.UserID); err == nil && u.Banned {
		flag = "paid while banned"
	}
	return s.Credit(ctx, wgbot.Credit{
		Provider: p.Provider, ProviderPaymentID: p.ProviderPaymentID, OrderID: o.ID, UserID: o.UserID,
		Amount: p.Amount, Currency: p.Currency, Raw: p.Raw, Flag: flag, Recurring: p.Recurring,
		Plan: wgbot.Plan{Name: o.Plan, Days: o.Days, Devices: o.Devices}, Traffic: o.Traffic, TopUp: o.TopUp,
	})
}

// Refund reverses a credited payment once; the user loses the days it
// bought, and access ends if none are left.
func (s *Service) Refund(ctx context.Context, provider, providerPaymentID string) (wgbot.RefundResult, error) {
	res, err := s.store.RefundPayment(ctx, postgres.Refund{Provider: provider, ProviderPaymentID: providerPaymentID}, s.clock())
	for _, ch := range res.Changes {
		s.provisionLater(ctx, ch)
	}
	return res, err
}

// RefundByHand is Refund of a payment whose provider cannot return the
// money (Crypto Pay): the payment is flagged with note, what the operator
// must still send back, so the payment list shows it.
func (s *Service) RefundByHand(ctx context.Context, provider, providerPaymentID, note string) (wgbot.RefundResult, error) {
	res, err := s.store.RefundPayment(ctx, postgres.Refund{Provider: provider, ProviderPaymentID: providerPaymentID, Flag: note}, s.clock())
	for _, ch := range res.Changes {
		s.provisionLater(ctx, ch)
	}
	return res, err
}

// ProviderRefund is a refund a provider reports, with the payment as the
// provider shows it now.
type ProviderRefund struct {
	Payment  Payment
	Refunded int64 // how much of Payment.Amount went back
	// Reverse: this is the refund's own notice, so a whole refund reverses a
	// credit. False (a payment confirmation that shows money refunded):
	// a credit is never touched; the refund's notice will do that.
	Reverse bool
}

// SettleRefund applies a refund whatever order the provider's notices come
// in (I10). A payment never credited is recorded as settled, with no days
// and flagged for the operator, so a confirmation arriving later is a
// duplicate: a refunded payment, even partly refunded, never grants its
// period. A whole refund of a credited payment reverses it as Refund does; a
// partial one keeps the period and flags the payment.
func (s *Service) SettleRefund(ctx context.Context, r ProviderRefund) (wgbot.RefundResult, error) {
	p := r.Payment
	if r.Refunded <= 0 || r.Refunded > p.Amount {
		return wgbot.RefundResult{}, wgbot.Errorf(wgbot.EInvalid, "bad_refund", "%s payment %s: refunded %d of %d",
			p.Provider, p.ProviderPaymentID, r.Refunded, p.Amount)
	}
	o, err := s.store.Order(ctx, p.OrderID)
	if err != nil {
		return wgbot.RefundResult{}, fmt.Errorf("%s refund of payment %s: %w", p.Provider, p.ProviderPaymentID, err)
	}
	whole := r.Refunded >= p.Amount
	flag := "refunded before it was credited; no days given"
	if !whole {
		flag = fmt.Sprintf("partly refunded (%d of %d %s) before it was credited; no days given, grant them by hand if due", r.Refunded, p.Amount, p.Currency)
	}
	ref := postgres.Refund{Provider: p.Provider, ProviderPaymentID: p.ProviderPaymentID, Partial: !whole || !r.Reverse,
		Uncredited: &postgres.Settlement{OrderID: o.ID, UserID: o.UserID, Amount: p.Amount, Currency: p.Currency, Flag: flag}}
	if r.Reverse && !whole {
		ref.Flag = fmt.Sprintf("partly refunded (%d of %d %s); the period was kept", r.Refunded, p.Amount, p.Currency)
	}
	res, err := s.store.RefundPayment(ctx, ref, s.clock())
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

// Stats is the operator's overview: the state now, and three windows in
// this order: today (since midnight UTC), the last 7 days, the last 30.
func (s *Service) Stats(ctx context.Context) (wgbot.Stats, error) {
	now := s.clock()
	return s.store.Stats(ctx, now, []time.Time{now.Truncate(24 * time.Hour), now.AddDate(0, 0, -7), now.AddDate(0, 0, -30)})
}

// MarkBlocked records that the user blocked (or unblocked) the bot.
func (s *Service) MarkBlocked(ctx context.Context, telegramID int64, blocked bool) error {
	return s.store.MarkBlocked(ctx, telegramID, blocked)
}
