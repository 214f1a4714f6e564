package service

import (
	"context"

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
	if days <= 0 || days > 3650 {
		return Delivery{}, wgbot.Change{}, wgbot.Errorf(wgbot.EInvalid, "bad_days", "days must be from 1 to 3650, got %d", days)
	}
	if devices <= 0 {
		devices = 1
	}
	// An empty name lets the store number the device in its transaction.
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return Delivery{}, wgbot.Change{}, err
	}
	plan := wgbot.Plan{Name: "grant", Days: days, Devices: devices}
	sub, p, ch, err := s.store.IssueDevice(ctx, user.ID, plan, s.cfg.Server.ID, peer, s.clock())
	if err != nil {
		return Delivery{}, ch, err
	}
	s.provisionLater(ctx, ch)
	return Delivery{Peer: p, Subscription: sub, Config: s.clientConfig(p, priv, psk)}, ch, nil
}
