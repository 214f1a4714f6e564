package service

import (
	"context"

	"wgbot"
)

// Resendable reports whether a device's config may be sent again at its
// user's request: its first delivery is recorded and no sender holds a
// claim on it. Until then the config is on its way — its issuing request
// or job is sending it, or WireGuard has not applied it yet — and sending
// it from elsewhere would give the user two configs, or one that does not
// work yet and whose device could then no longer be taken back.
// ErrPeerNotFound: the device is gone.
func (s *Service) Resendable(ctx context.Context, p wgbot.Peer) (bool, error) {
	st, err := s.store.DeliveryState(ctx, p.PublicKey)
	if err != nil {
		return false, err
	}
	return st.Delivered && st.ClaimedFor == 0, nil
}
