package payment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"wgbot"
	"wgbot/payment/yookassa"
	"wgbot/postgres"
	"wgbot/service"
)

// Renewals is what saved-card renewals need of the service.
type Renewals interface {
	Orders
	SaveAutorenewal(ctx context.Context, a postgres.Autorenewal) error
	ClaimRenewal(ctx context.Context, userID int64, provider, currency string, before time.Duration) (service.Renewal, bool, error)
	FailRenewal(ctx context.Context, c postgres.RenewalCharge) (bool, error)
	NoteRenewalPending(ctx context.Context, c postgres.RenewalCharge) error
	SucceedRenewal(ctx context.Context, c postgres.RenewalCharge) error
	DueRenewals(ctx context.Context, provider string, before time.Duration) ([]int64, error)
}

// keyLifetime is how long a charge's Idempotence-Key is retried: less than
// the 24 hours YooKassa remembers a key, with room for clocks.
const keyLifetime = 20 * time.Hour

// RenewBefore is how long before expiry a saved card is charged: a day,
// so a refused charge leaves the user time to pay by hand.
const RenewBefore = 24 * time.Hour

// RenewDue charges every saved card due now (jobs.Renewer). One user's
// failure does not stop the others; a charge left pending is asked again
// on the next run with the same key.
func (y *YooKassa) RenewDue(ctx context.Context) (int, error) {
	rs, ok := y.svc.(Renewals)
	if !ok {
		return 0, errNoRenewals
	}
	users, err := rs.DueRenewals(ctx, providerYooKassa, RenewBefore)
	if err != nil {
		return 0, err
	}
	var n int
	var errs []error
	for _, u := range users {
		out, err := y.RenewSaved(ctx, rs, u, RenewBefore)
		if err != nil {
			errs = append(errs, fmt.Errorf("user %d: %w", u, err))
			continue
		}
		if out == RenewCharged || out == RenewFailed {
			n++
		}
		y.metrics.Payment(providerYooKassa, "renewal_"+string(out))
	}
	return n, errors.Join(errs...)
}

var _ Renewals = (*service.Service)(nil)

// RenewOutcome is what RenewSaved did.
type RenewOutcome string

const (
	RenewNone    RenewOutcome = "none"    // renewals off, or no subscription
	RenewDone    RenewOutcome = "done"    // this period was settled before: nothing charged
	RenewCharged RenewOutcome = "charged" // charged and credited
	RenewFailed  RenewOutcome = "failed"  // refused or given up; the user is told by the charge's notice
	RenewPending RenewOutcome = "pending" // YooKassa has not decided; its notification settles it
)

// StartSaving is Start for a user who agreed at checkout to renewals from
// the card they pay with: YooKassa keeps the card (save_payment_method),
// and the payment's notification stores it for RenewSaved.
func (y *YooKassa) StartSaving(ctx context.Context, order wgbot.Order, user wgbot.User) (string, error) {
	return y.start(ctx, order, user, true)
}

// renewalKey is the Idempotence-Key of a period's charge: derived from the
// user and the period, never random, so a crash and a retry ask YooKassa
// for the same payment and a period is charged at most once.
func renewalKey(c postgres.RenewalCharge) string {
	return "wgbot-renew-" + strconv.FormatInt(c.UserID, 10) + "-" + strconv.FormatInt(c.PeriodEnd.Unix(), 10)
}

// RenewSaved charges the user's saved card for their current period, once,
// if it ends within before.
// The money goes through PayOrder like any payment, keyed by YooKassa's
// payment id (I3, I10); a refused charge cancels the order, whose notice
// tells the user with a button to pay by hand, and is never retried.
func (y *YooKassa) RenewSaved(ctx context.Context, svc Renewals, userID int64, before time.Duration) (RenewOutcome, error) {
	r, ok, err := svc.ClaimRenewal(ctx, userID, providerYooKassa, y.Currency(), before)
	if err != nil || !ok {
		return RenewNone, err
	}
	if r.Charge.Status != "pending" {
		return RenewDone, nil
	}
	if r.Charge.PaymentID != "" {
		// Seen pending before: a repeat with the key would only replay
		// that first answer, so the payment is asked for by its id.
		return y.settlePending(ctx, svc, r)
	}
	if time.Since(r.Charge.CreatedAt) > keyLifetime {
		return y.giveUp(ctx, svc, r)
	}
	req := yookassa.CreatePaymentRequest{
		Amount:          yookassa.AmountFromMinor(r.Order.Amount, r.Order.Currency),
		Description:     fmt.Sprintf("VPN %s, renewal, order %d", r.Order.Plan, r.Order.ID),
		Metadata:        map[string]string{"order_id": strconv.FormatInt(r.Order.ID, 10), "renewal": "1"},
		PaymentMethodID: r.Card.MethodID,
	}
	if y.receipts.On {
		rc, err := y.receipt(ctx, r.Order)
		if err != nil {
			return RenewNone, err
		}
		req.Receipt = &rc
	}
	p, err := y.client.CreatePayment(ctx, req, renewalKey(r.Charge))
	if err != nil {
		// Unknown outcome: the charge stays pending and the next try asks
		// with the same key, which returns this payment if it was made.
		return RenewNone, fmt.Errorf("renewal charge of user %d: %w", userID, err)
	}
	return y.settleCharge(ctx, svc, r, p)
}

// settleCharge records what YooKassa decided of a period's charge.
func (y *YooKassa) settleCharge(ctx context.Context, svc Renewals, r service.Renewal, p yookassa.Payment) (RenewOutcome, error) {
	r.Charge.PaymentID = p.ID
	switch p.Status {
	case yookassa.StatusSucceeded:
		amount, err := p.Amount.Minor()
		if err != nil {
			return RenewNone, err
		}
		if _, err := svc.PayOrder(ctx, service.Payment{Provider: providerYooKassa, ProviderPaymentID: p.ID, OrderID: r.Order.ID,
			Amount: amount, Currency: p.Amount.Currency}); err != nil {
			return RenewNone, err
		}
		return RenewCharged, svc.SucceedRenewal(ctx, r.Charge)
	case yookassa.StatusCanceled:
		if p.CancellationDetails != nil {
			r.Charge.Reason = p.CancellationDetails.Reason
		}
		y.log.WarnContext(ctx, "saved-card renewal refused", "user", r.Charge.UserID, "payment", p.ID, "reason", r.Charge.Reason)
		_, err := svc.FailRenewal(ctx, r.Charge)
		return RenewFailed, err
	}
	// Pending: its id is kept, so a later cancel is told as a hold
	// released, and a charge past its key's lifetime is looked up by it.
	return RenewPending, svc.NoteRenewalPending(ctx, r.Charge)
}

// settlePending asks YooKassa for a charge it left pending and records
// what it decided since.
func (y *YooKassa) settlePending(ctx context.Context, svc Renewals, r service.Renewal) (RenewOutcome, error) {
	p, err := y.client.GetPayment(ctx, r.Charge.PaymentID)
	if err != nil {
		return RenewNone, fmt.Errorf("renewal charge %s of user %d: %w", r.Charge.PaymentID, r.Charge.UserID, err)
	}
	if p.Status == yookassa.StatusSucceeded || p.Status == yookassa.StatusCanceled {
		return y.settleCharge(ctx, svc, r, p)
	}
	if time.Since(r.Charge.CreatedAt) > keyLifetime {
		return y.giveUp(ctx, svc, r)
	}
	return RenewPending, nil
}

// giveUp ends a charge undecided for longer than YooKassa keeps an
// Idempotence-Key: past that, the same key could open a second payment,
// so it is never sent again, and the user is told. A payment that does go
// through later still arrives by its notification and is credited (its
// order id is in its metadata).
func (y *YooKassa) giveUp(ctx context.Context, svc Renewals, r service.Renewal) (RenewOutcome, error) {
	r.Charge.Reason = wgbot.ReasonUnconfirmed
	y.log.WarnContext(ctx, "saved-card renewal unconfirmed for too long; given up", "user", r.Charge.UserID, "order", r.Order.ID)
	_, err := svc.FailRenewal(ctx, r.Charge)
	return RenewFailed, err
}

// saveCard stores the card of a credited first payment whose payer agreed
// to renewals.
// The payment was fetched back from the API, so its metadata is what
// StartSaving wrote.
func (y *YooKassa) keepCard(ctx context.Context, p yookassa.Payment) error {
	rs, ok := y.svc.(Renewals)
	if !ok || p.PaymentMethod == nil || !p.PaymentMethod.Saved || p.Metadata["autorenew"] != "1" {
		return nil
	}
	userID, err := strconv.ParseInt(p.Metadata["user_id"], 10, 64)
	if err != nil {
		return fmt.Errorf("payment %s: saved card without a user: %w", p.ID, err)
	}
	return rs.SaveAutorenewal(ctx, postgres.Autorenewal{UserID: userID, Provider: providerYooKassa, MethodID: p.PaymentMethod.ID, Plan: p.Metadata["plan"]})
}

var errNoRenewals = errors.New("yookassa: the service does not keep saved cards")
