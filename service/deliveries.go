package service

import (
	"context"
	"errors"
	"fmt"
	"time"
	"wgbot/jobs/jobargs"

	"wgbot"
)

// A newly issued device's config reaches its user at least once and,
// normally, exactly once (I9). The issuing transaction writes a
// device_issued job; the request that issued the device sends the config
// at once through SendIssued, and the job, due a little after the request
// has had its chance, sends it only if nobody did. Both claim the delivery
// in the database first, so they never both send; a process killed between
// the commit and the send leaves the job to send after a restart.

// defaultDeliveryLease bounds how long one sender may hold a delivery: a
// sender killed mid-send delays its job by at most this. Sends are cut off
// at the lease, so a slow sender does not overlap the next one.
const defaultDeliveryLease = 45 * time.Second

// issuerMargin is how long, after its wait for WireGuard, the issuing
// request has to claim the delivery before the job takes over.
const issuerMargin = 5 * time.Second

// Why a device was issued: DeviceNotice.Reason.
const (
	IssuedTrial  = jobargs.IssuedTrial
	IssuedDevice = jobargs.IssuedDevice
	IssuedGrant  = jobargs.IssuedGrant
	// IssuedReferral and IssuedPromo: a referral bonus's or a promo
	// code's days, for a user with no live subscription.
	IssuedReferral = jobargs.IssuedReferral
	IssuedPromo    = jobargs.IssuedPromo
	IssuedGift     = jobargs.IssuedGift
	IssuedMoved    = jobargs.IssuedMoved
)

// DeviceNotice is a newly issued device's config on its way to its user.
type DeviceNotice struct {
	User     wgbot.User
	Delivery Delivery
	Reason   string // IssuedTrial, IssuedDevice, IssuedGrant or IssuedMoved
	Days     int    // for a grant: the days granted
	Replaces int64  // for a moved device: the old peer, removed once the user confirms
}

// DeviceNotifier sends a newly issued device's config to its user. The
// Telegram bot implements it; it returns an error matching
// wgbot.ErrUserBlocked when the user blocked the bot.
type DeviceNotifier interface {
	DeviceIssued(ctx context.Context, n DeviceNotice) error
}

func (s *Service) deliveryLease() time.Duration {
	if s.cfg.DeliveryLease > 0 {
		return s.cfg.DeliveryLease
	}
	return defaultDeliveryLease
}

// SendIssued sends a newly issued device's config with send, unless it has
// been sent already or another sender is at it. sent reports whether this
// call sent it. A failed send is released for the job to retry.
func (s *Service) SendIssued(ctx context.Context, peerID int64, send func(context.Context) error) (sent bool, err error) {
	lease := s.deliveryLease()
	claim, ok, err := s.store.ClaimDelivery(ctx, peerID, lease)
	if err != nil || !ok {
		return false, err
	}
	sendCtx, cancel := context.WithTimeout(ctx, lease)
	sendErr := send(sendCtx)
	cancel()
	// The claim is finished whatever ctx has become: a recorded delivery
	// is what keeps the job from sending it again.
	finish, cancelFinish := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelFinish()
	if err := s.store.FinishDelivery(finish, peerID, claim, sendErr == nil); err != nil {
		if sendErr == nil {
			// Sent, but not recorded: the job will send it once more.
			s.log.ErrorContext(ctx, "config delivered but not recorded; the user may get it twice", "peer", peerID, "err", err)
			return true, nil
		}
		s.log.WarnContext(ctx, "release a failed delivery", "peer", peerID, "err", err)
	}
	if sendErr != nil {
		return false, fmt.Errorf("deliver device %d: %w", peerID, sendErr)
	}
	return true, nil
}

// NotDueError says a delivery job should come back after Wait: the
// issuing request may still send the config itself, or another sender is
// at it.
type NotDueError struct{ Wait time.Duration }

func (e *NotDueError) Error() string { return fmt.Sprintf("delivery not due for %v", e.Wait) }

// DeliverIssued is the device_issued job's work. Nothing to do when the
// device was taken back, is no longer active, or its config went out. It
// returns a *NotDueError while the issuing request may still send it, and
// any other error (WireGuard not ready, Telegram failing) to be retried
// with backoff. Like the issuing request it waits until WireGuard has the
// device, so the config works when it arrives.
func (s *Service) DeliverIssued(ctx context.Context, args jobargs.DeviceIssued, n DeviceNotifier) error {
	st, err := s.store.DeliveryState(ctx, args.PublicKey)
	if errors.Is(err, wgbot.ErrPeerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Delivered || st.Peer.Status != wgbot.PeerActive {
		return nil
	}
	if wait := s.applyWait() + issuerMargin - st.Age; wait > 0 {
		return &NotDueError{Wait: wait}
	}
	if st.ClaimedFor > 0 {
		return &NotDueError{Wait: st.ClaimedFor}
	}
	ch, err := s.store.Revision(ctx, st.Peer.ServerID)
	if err != nil {
		return err
	}
	if err := s.provision(ctx, ch); err != nil {
		return err
	}
	user, sub, err := s.store.SubscriptionNotice(ctx, st.Peer.SubscriptionID)
	if err != nil {
		return err
	}
	priv, psk, err := s.keys.OpenPeer(st.Peer.Secrets)
	if err != nil {
		return err
	}
	d, err := s.delivery(ctx, st.Peer.Peer, sub, priv, psk)
	if err != nil {
		return err
	}
	notice := DeviceNotice{User: user, Reason: args.Reason, Days: args.Days, Replaces: args.Replaces, Delivery: d}
	sent, err := s.SendIssued(ctx, st.Peer.ID, func(ctx context.Context) error { return n.DeviceIssued(ctx, notice) })
	if err == nil && !sent {
		// Claimed by another sender meanwhile: look again after its lease.
		return &NotDueError{Wait: s.deliveryLease()}
	}
	return err
}

// MarkDelivered records that a device's config reached its user another
// way (with a payment's notice), so its job does not send it once more.
func (s *Service) MarkDelivered(ctx context.Context, peerID int64) error {
	return s.store.MarkDelivered(ctx, peerID)
}

// LiveDevices returns the user's live subscription and its active devices'
// configs, for a user who asks for access they already have.
// ErrNoSubscription: no live subscription. DeliveredAt of each tells when
// its config last reached the user.
func (s *Service) LiveDevices(ctx context.Context, user wgbot.User) (wgbot.Subscription, []Delivery, error) {
	sub, devices, err := s.store.LiveDevices(ctx, user.ID)
	if err != nil {
		return sub, nil, err
	}
	out := make([]Delivery, 0, len(devices))
	for _, d := range devices {
		priv, psk, err := s.keys.OpenPeer(d.Secrets)
		if errors.Is(err, wgbot.ErrNoClientKey) {
			out = append(out, Delivery{Peer: d.Peer, Subscription: sub, DeliveredAt: d.DeliveredAt, KeyUnknown: true})
			continue
		}
		if err != nil {
			return sub, nil, err
		}
		del, err := s.delivery(ctx, d.Peer, sub, priv, psk)
		if err != nil {
			return sub, nil, err
		}
		del.DeliveredAt = d.DeliveredAt
		out = append(out, del)
	}
	return sub, out, nil
}

func (s *Service) applyWait() time.Duration {
	if s.cfg.ApplyWait > 0 {
		return s.cfg.ApplyWait
	}
	return 5 * time.Second
}
