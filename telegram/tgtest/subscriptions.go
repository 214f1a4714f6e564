package tgtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// starSubscriptionPeriod is the only subscription_period the Bot API
// accepts: 30 days.
const starSubscriptionPeriod = 2592000

// maxSubscriptionStars is the most a Stars subscription may cost per period.
const maxSubscriptionStars = 10000

// invoiceLink is an invoice createInvoiceLink made; users pay it by link.
type invoiceLink struct {
	url     string
	invoice Invoice
}

// starSubscription is a user's Stars subscription to the bot: Telegram
// charges it every period until it is cancelled.
type starSubscription struct {
	userID    int64
	invoice   Invoice
	charges   []string // the first charge, then each renewal's
	expiresAt time.Time
	canceled  bool // by the bot (editUserStarSubscription): no more charges
}

func (s *Server) createInvoiceLink(_ context.Context, p params) (any, *apiError) {
	inv, apiErr := parseInvoice(p)
	if apiErr != nil {
		return nil, apiErr
	}
	if p.has("subscription_period") {
		period, apiErr := p.int("subscription_period")
		if apiErr != nil {
			return nil, apiErr
		}
		inv.SubscriptionPeriod = period
	}
	switch {
	case p.has("subscription_period") && inv.SubscriptionPeriod != starSubscriptionPeriod:
		// 30 days is the only period Telegram allows.
		return nil, badRequest("SUBSCRIPTION_PERIOD_INVALID")
	case inv.SubscriptionPeriod != 0 && inv.Currency != "XTR":
		// Subscriptions are paid in Stars only.
		return nil, badRequest("SUBSCRIPTION_CURRENCY_INVALID")
	case inv.SubscriptionPeriod != 0 && inv.Total() > maxSubscriptionStars:
		return nil, badRequest("SUBSCRIPTION_PRICE_INVALID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextLink++
	slug := "tgtest" + strconv.Itoa(s.nextLink)
	url := "https://t.me/$" + slug
	s.links[slug] = &invoiceLink{url: url, invoice: inv}
	return url, nil
}

// InvoiceLink returns the invoice behind a link createInvoiceLink made.
func (s *Server) InvoiceLink(url string) (Invoice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.linkLocked(url)
	if l == nil {
		return Invoice{}, false
	}
	return l.invoice, true
}

func (s *Server) linkLocked(url string) *invoiceLink {
	slug, ok := strings.CutPrefix(url, "https://t.me/$")
	if !ok {
		return nil
	}
	return s.links[slug]
}

// ErrSubscriptionCanceled is RenewSubscription's answer for a subscription
// the bot cancelled, or whose charge was refunded: Telegram charges it no
// more.
var ErrSubscriptionCanceled = errors.New("tgtest: the Stars subscription is cancelled")

// PayInvoiceLink injects the successful_payment of user paying the
// invoice link url (its pre-checkout query is PreCheckout's to ask), and
// returns its update_id. For a subscription link it is the first charge
// (is_recurring, is_first_recurring, subscription_expiration_date one
// period on) and starts the subscription RenewSubscription charges again.
// An empty chargeID gets a deterministic one.
func (s *Server) PayInvoiceLink(user User, url, chargeID string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.linkLocked(url)
	if l == nil {
		return 0, fmt.Errorf("tgtest: no invoice link %q", url)
	}
	c := s.chatLocked(user)
	if chargeID == "" {
		chargeID = "stxtgtest" + strconv.FormatInt(s.nextUpdateID, 10)
	}
	if s.charges[chargeID] != nil {
		return 0, fmt.Errorf("tgtest: charge %q exists", chargeID)
	}
	s.charges[chargeID] = &charge{userID: user.ID}
	sp := &wireSuccessfulPayment{Currency: l.invoice.Currency, TotalAmount: l.invoice.Total(),
		InvoicePayload: l.invoice.Payload, TelegramPaymentChargeID: chargeID}
	if l.invoice.SubscriptionPeriod != 0 {
		sub := &starSubscription{userID: user.ID, invoice: l.invoice, charges: []string{chargeID},
			expiresAt: time.Now().Add(time.Duration(l.invoice.SubscriptionPeriod) * time.Second).Truncate(time.Second)}
		s.starSubs[chargeID] = sub
		sp.IsRecurring, sp.IsFirstRecurring, sp.SubscriptionExpirationDate = true, true, sub.expiresAt.Unix()
	}
	m := s.userMessageLocked(c)
	m.SuccessfulPayment = sp
	return s.enqueueLocked("message", func(u *wireUpdate) { u.Message = m }), nil
}

// RenewSubscription makes Telegram charge user's Stars subscription (named
// by any of its charge ids) for its next period, as it does when the
// period ends: a successful_payment with is_recurring, the new charge id
// newChargeID (empty: a deterministic one) and the next expiration date.
// A subscription the bot cancelled, or one with a refunded charge, is not
// charged: ErrSubscriptionCanceled.
func (s *Server) RenewSubscription(user User, chargeID, newChargeID string) (int64, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.starSubs[chargeID]
	if sub == nil || sub.userID != user.ID {
		return 0, "", fmt.Errorf("tgtest: user %d has no Stars subscription with charge %q", user.ID, chargeID)
	}
	if sub.canceled || s.subRefundedLocked(sub) {
		return 0, "", ErrSubscriptionCanceled
	}
	if newChargeID == "" {
		newChargeID = "stxtgtest" + strconv.FormatInt(s.nextUpdateID, 10)
	}
	if s.charges[newChargeID] != nil {
		return 0, "", fmt.Errorf("tgtest: charge %q exists", newChargeID)
	}
	s.charges[newChargeID] = &charge{userID: user.ID}
	sub.charges = append(sub.charges, newChargeID)
	s.starSubs[newChargeID] = sub
	sub.expiresAt = sub.expiresAt.Add(time.Duration(sub.invoice.SubscriptionPeriod) * time.Second)
	c := s.chatLocked(user)
	m := s.userMessageLocked(c)
	m.SuccessfulPayment = &wireSuccessfulPayment{Currency: sub.invoice.Currency, TotalAmount: sub.invoice.Total(),
		InvoicePayload: sub.invoice.Payload, TelegramPaymentChargeID: newChargeID,
		IsRecurring: true, SubscriptionExpirationDate: sub.expiresAt.Unix()}
	return s.enqueueLocked("message", func(u *wireUpdate) { u.Message = m }), newChargeID, nil
}

func (s *Server) subRefundedLocked(sub *starSubscription) bool {
	for _, id := range sub.charges {
		if s.charges[id].refunded {
			return true
		}
	}
	return false
}

// SubscriptionCanceled reports whether the bot cancelled the Stars
// subscription that charge chargeID belongs to.
func (s *Server) SubscriptionCanceled(chargeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.starSubs[chargeID]
	return sub != nil && sub.canceled
}

// editUserStarSubscription cancels or re-enables the renewal of a user's
// Stars subscription. Cancelling keeps the paid period; the user is just
// not charged again.
func (s *Server) editUserStarSubscription(_ context.Context, p params) (any, *apiError) {
	userID, apiErr := p.int64("user_id")
	if apiErr != nil {
		return nil, apiErr
	}
	if !p.has("is_canceled") {
		return nil, badRequest("parameter \"is_canceled\" is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.starSubs[p.str("telegram_payment_charge_id")]
	switch {
	case sub == nil || sub.userID != userID:
		return nil, badRequest("CHARGE_NOT_FOUND")
	case !time.Now().Before(sub.expiresAt):
		return nil, badRequest("SUBSCRIPTION_EXPIRED")
	}
	sub.canceled = p.bool("is_canceled")
	s.notifyLocked()
	return true, nil
}
