package service

import (
	"context"
	"time"

	"wgbot/postgres"

	"wgbot"
)

// IssueDevice is the operator's `wgbot issue`: days more on the user's
// subscription (created or renewed as Grant does) and one new device on it,
// both or neither. devices is the least device limit the subscription keeps
// (at least 1). The change is committed and the reconciler woken; unlike
// the bot's paths it does not wait for WireGuard, because the operator CLI
// runs a reconcile itself and reports that outcome.
func (s *Service) IssueDevice(ctx context.Context, user wgbot.User, days, devices int) (Delivery, wgbot.Change, error) {
	if user.Banned {
		return Delivery{}, wgbot.Change{}, wgbot.ErrBanned
	}
	plan, err := wgbot.GrantPlan(days, devices)
	if err != nil {
		return Delivery{}, wgbot.Change{}, err
	}
	// An empty name lets the store number the device in its transaction.
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return Delivery{}, wgbot.Change{}, err
	}
	peer.Overfill = true // paid or given by an operator: never refused for capacity
	srv, err := s.pick(ctx, user.ID, 0)
	if err != nil {
		return Delivery{}, wgbot.Change{}, err
	}
	sub, p, ch, err := s.store.IssueDevice(ctx, user.ID, plan, srv.ID, peer, s.clock())
	if err != nil {
		return Delivery{}, ch, err
	}
	s.provisionLater(ctx, ch)
	d, err := s.delivery(ctx, p, sub, priv, psk)
	return d, ch, err
}

// UserRecord is what an operator reads about one user: every
// subscription, every device (removed ones included) and every payment.
type UserRecord struct {
	Subscriptions []wgbot.Subscription // newest first
	Devices       []wgbot.Peer         // in the order they were issued
	// Listed is Devices with each one's server and this month's usage.
	Listed   []postgres.PeerListing
	Payments []PaymentRecord // in the order they arrived
	// Referral history: who invited the user (a Telegram id; 0: nobody),
	// whom they invited and the bonus days they kept from it.
	ReferredBy           int64
	Invited, InvitedPaid int64
	ReferralDaysEarned   int64
	Promos               []postgres.PromoUse // newest first
}

// PaymentRecord is one payment as an operator reads it; ProviderPaymentID
// is what a refund names (for Stars, the telegram_payment_charge_id).
type PaymentRecord struct {
	Provider          string
	ProviderPaymentID string
	Amount            int64 // minor units
	Currency          string
	Status            string // credited or refunded
	Days              int
	AppliedAt         time.Time
	RefundedAt        *time.Time
}

// UserRecord reads the user's subscriptions, devices and payments.
func (s *Service) UserRecord(ctx context.Context, user wgbot.User) (UserRecord, error) {
	var rec UserRecord
	var err error
	if rec.Subscriptions, err = s.store.Subscriptions(ctx, user.ID); err != nil {
		return rec, err
	}
	peers, err := s.store.ListPeers(ctx, postgres.PeerFilter{UserID: user.ID})
	if err != nil {
		return rec, err
	}
	rec.Listed = peers
	for _, p := range peers {
		rec.Devices = append(rec.Devices, p.Peer)
	}
	if user.ReferrerID != 0 {
		referrer, err := s.store.UserByID(ctx, user.ReferrerID)
		if err != nil {
			return rec, err
		}
		rec.ReferredBy = referrer.TelegramID
	}
	if rec.Invited, rec.InvitedPaid, rec.ReferralDaysEarned, err = s.store.ReferralStats(ctx, user.ID); err != nil {
		return rec, err
	}
	if rec.Promos, err = s.store.UserPromos(ctx, user.ID); err != nil {
		return rec, err
	}
	payments, err := s.store.UserPayments(ctx, user.ID)
	for _, p := range payments {
		rec.Payments = append(rec.Payments, PaymentRecord{Provider: p.Provider, ProviderPaymentID: p.ProviderPaymentID,
			Amount: p.Amount, Currency: p.Currency, Status: p.Status, Days: p.Days, AppliedAt: p.AppliedAt, RefundedAt: p.RefundedAt})
	}
	return rec, err
}
