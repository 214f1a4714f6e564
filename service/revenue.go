package service

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"

	"wgbot"
)

// referralAlphabet leaves out letters and digits read as one another
// (0/o, 1/l/i), so a code copied by hand still works.
const referralAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// newReferralCode draws a 10-character code: 31¹⁰ codes, not guessable
// from the Telegram id or from another user's code.
func newReferralCode() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on a supported system
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(referralAlphabet[int(c)%len(referralAlphabet)])
	}
	return sb.String()
}

// Referral is the user's personal referral code (made on first use) and
// what it brought them.
func (s *Service) Referral(ctx context.Context, user wgbot.User) (wgbot.ReferralStats, error) {
	code, err := s.store.ReferralCode(ctx, user.ID, newReferralCode)
	if err != nil {
		return wgbot.ReferralStats{}, err
	}
	st := wgbot.ReferralStats{Code: code, BonusActive: s.store.Referral().ReferrerDays > 0}
	st.Invited, st.Paid, st.DaysEarned, err = s.store.ReferralStats(ctx, user.ID)
	return st, err
}

// ReferralBonus is the bonus days each side of a referral gets.
func (s *Service) ReferralBonus() wgbot.ReferralBonus { return s.store.Referral() }

// CreatePromo records a promo code an operator made, after checking it
// against the rules and the plans on sale.
func (s *Service) CreatePromo(ctx context.Context, p wgbot.Promo) (wgbot.Promo, error) {
	var plans []string
	for _, pl := range s.cfg.Plans {
		plans = append(plans, pl.Name)
	}
	p, err := wgbot.PreparePromo(p, plans)
	if err != nil {
		return p, err
	}
	return s.store.CreatePromo(ctx, p)
}

// Promos lists every promo code, newest first.
func (s *Service) Promos(ctx context.Context) ([]wgbot.Promo, error) { return s.store.Promos(ctx) }

// DisablePromo stops a code from being redeemed.
func (s *Service) DisablePromo(ctx context.Context, code string) (wgbot.Promo, error) {
	return s.store.DisablePromo(ctx, wgbot.NormalizePromoCode(code), s.clock())
}

// PromoResult is what redeeming a code did for the user.
type PromoResult struct {
	wgbot.Redemption
	Delivery *Delivery // the new device's config, when free days issued one
}

// RedeemPromo redeems a promo code a user typed: free days at once, or a
// discount on the next order. A code that does not exist, is disabled,
// expired, used up or used by this user already changes nothing and is
// refused with its reason (wgbot.ErrPromo…).
func (s *Service) RedeemPromo(ctx context.Context, user wgbot.User, code string) (PromoResult, error) {
	if user.Banned {
		return PromoResult{}, wgbot.ErrBanned
	}
	code = wgbot.NormalizePromoCode(code)
	if !wgbot.ValidPromoCode(code) {
		return PromoResult{}, wgbot.ErrPromoNotFound
	}
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return PromoResult{}, err
	}
	peer.Overfill = true // days the user was given, like a payment's
	// A discount needs no server; free days for a user without access
	// issue a device, which waits for its node like a payment's does.
	srv, err := s.pick(ctx, user.ID, 0)
	if errors.Is(err, wgbot.ErrLocationDown) {
		srv, err = s.pick(ctx, 0, 0)
	}
	if errors.Is(err, wgbot.ErrNoServer) {
		srv, err = s.cfg.Server, nil
	}
	if err != nil {
		return PromoResult{}, err
	}
	red, err := s.store.RedeemPromo(ctx, user.ID, code, srv.ID, peer, s.clock())
	if err != nil {
		return PromoResult{}, err
	}
	out := PromoResult{Redemption: red}
	if red.Days > 0 {
		s.provisionLater(ctx, red.Change)
	}
	if red.NewPeer != nil {
		d, err := s.delivery(ctx, *red.NewPeer, red.Subscription, priv, psk)
		if err != nil {
			return out, err
		}
		out.Delivery = &d
	}
	return out, nil
}

// PendingDiscount is the discount the user's next order gets, or nil.
func (s *Service) PendingDiscount(ctx context.Context, user wgbot.User) (*wgbot.Discount, error) {
	return s.store.PendingDiscount(ctx, user.ID)
}

// Bonus says what a ledger row that is not money gave: a referral bonus
// (to the referrer, or to the invited user) or promo days.
type Bonus struct {
	Kind    string // wgbot.LedgerReferral or wgbot.LedgerPromo
	Invited bool   // a referral bonus of the user who followed the link
	Days    int
}

// BonusNotifier tells users about days they were given with no payment:
// the job queue calls it for the notices of referral bonuses. The bot
// implements it.
type BonusNotifier interface {
	BonusCredited(ctx context.Context, user wgbot.User, sub wgbot.Subscription, b Bonus) error
}

// BonusNotice loads the user of a referral bonus and their subscription,
// for the job that tells them a refund took the bonus back.
func (s *Service) BonusNotice(ctx context.Context, ledgerID int64) (wgbot.User, wgbot.Subscription, error) {
	return s.store.BonusNotice(ctx, ledgerID)
}
