package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"wgbot"
)

// newGiftToken makes a gift link's secret: 16 random bytes, so a link
// cannot be guessed.
func newGiftToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("gift token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// GiftResult is what redeeming a gift gave.
type GiftResult struct {
	Gift wgbot.Gift
	CreditResult
}

// RedeemGift gives the gift behind token to user, if nobody has yet: the
// first of any number of users opening the link at once gets its days (a
// user with no subscription gets one and a device); the rest get
// wgbot.ErrGiftRedeemed.
func (s *Service) RedeemGift(ctx context.Context, user wgbot.User, token string) (GiftResult, error) {
	if user.Banned {
		return GiftResult{}, wgbot.ErrBanned
	}
	if !wgbot.GiftTokenPattern.MatchString(token) {
		return GiftResult{}, wgbot.ErrGiftNotFound
	}
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return GiftResult{}, err
	}
	peer.Overfill = true // paid for, like a payment's device
	srv, err := s.pick(ctx, user.ID, 0)
	if errors.Is(err, wgbot.ErrLocationDown) {
		srv, err = s.pick(ctx, 0, 0)
	}
	if errors.Is(err, wgbot.ErrNoServer) {
		srv, err = s.cfg.Server, nil
	}
	if err != nil {
		return GiftResult{}, err
	}
	g, res, err := s.store.RedeemGift(ctx, user.ID, token, srv.ID, peer, s.clock())
	if err != nil {
		return GiftResult{Gift: g}, err
	}
	cr, err := s.afterCredit(ctx, res, priv, psk, "gift redeemed", "gift", g.ID)
	return GiftResult{Gift: g, CreditResult: cr}, err
}

// CloseGift stops the gift a payment bought from being redeemed, before
// its money goes back; wgbot.ErrGiftRedeemed if it already was. A payment
// that bought no gift is no error.
func (s *Service) CloseGift(ctx context.Context, provider, providerPaymentID string) error {
	return s.store.CloseGift(ctx, provider, providerPaymentID)
}

// GiftNotice loads a gift and its buyer, for the job that sends the
// buyer its link.
func (s *Service) GiftNotice(ctx context.Context, giftID int64) (wgbot.User, wgbot.Gift, error) {
	return s.store.GiftNotice(ctx, giftID)
}
