package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"wgbot"
)

// A new device's config is sent by whichever comes first of the request
// that issued it and its device_issued job. Each claims the delivery with
// a lease before sending and records it after: the other then finds it
// claimed or done. A lease outlives only a sender that died, so no claim
// blocks a delivery for longer than its lease.

// DeliveryState is where one device's first delivery stands.
type DeliveryState struct {
	Peer       SealedPeer
	UserID     int64
	Delivered  bool
	ClaimedFor time.Duration // how much longer a sender's claim lasts; 0: none
	Age        time.Duration // since the device was issued
}

// DeliveryState finds the device with publicKey. ErrPeerNotFound: it was
// taken back (its first apply failed) and there is nothing to deliver.
func (s *Store) DeliveryState(ctx context.Context, publicKey string) (DeliveryState, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+`, s.user_id, p.delivered_at IS NOT NULL,
			COALESCE(EXTRACT(EPOCH FROM greatest(p.delivery_claimed_until - now(), interval '0')), 0)::float8,
			EXTRACT(EPOCH FROM now() - p.created_at)::float8
		FROM peers p JOIN subscriptions s ON s.id = p.subscription_id WHERE p.public_key = $1`, publicKey)
	if err != nil {
		return DeliveryState{}, fmt.Errorf("delivery of device %s: %w", publicKey, err)
	}
	st, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (DeliveryState, error) {
		var st DeliveryState
		var claimed, age float64
		p, err := scanSealedPeerWith(row, &st.UserID, &st.Delivered, &claimed, &age)
		st.Peer, st.ClaimedFor, st.Age = p, seconds(claimed), seconds(age)
		return st, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return st, wgbot.ErrPeerNotFound
	}
	if err != nil {
		return st, fmt.Errorf("delivery of device %s: %w", publicKey, err)
	}
	return st, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// ClaimDelivery claims the first delivery of an active device's config for
// lease. ok is false when it was delivered already, another sender holds
// it, or the device is no longer active; claim identifies this claim to
// FinishDelivery.
func (s *Store) ClaimDelivery(ctx context.Context, peerID int64, lease time.Duration) (claim time.Time, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `UPDATE peers SET delivery_claimed_until = now() + $2::interval
		WHERE id = $1 AND status = 'active' AND delivered_at IS NULL
		  AND (delivery_claimed_until IS NULL OR delivery_claimed_until <= now())
		RETURNING delivery_claimed_until`, peerID, lease).Scan(&claim)
	if errors.Is(err, pgx.ErrNoRows) {
		return claim, false, nil
	}
	if err != nil {
		return claim, false, fmt.Errorf("claim delivery of device %d: %w", peerID, err)
	}
	return claim, true, nil
}

// FinishDelivery ends a claim: sent records the delivery; otherwise the
// claim is released at once, so the job may try again without waiting for
// the lease. A claim that lapsed and was taken by another sender is left
// to that sender.
func (s *Store) FinishDelivery(ctx context.Context, peerID int64, claim time.Time, sent bool) error {
	query := `UPDATE peers SET delivery_claimed_until = NULL WHERE id = $1 AND delivery_claimed_until = $2`
	if sent {
		query = `UPDATE peers SET delivered_at = COALESCE(delivered_at, now()),
			delivery_claimed_until = CASE WHEN delivery_claimed_until = $2 THEN NULL ELSE delivery_claimed_until END
			WHERE id = $1`
	}
	if _, err := s.pool.Exec(ctx, query, peerID, claim); err != nil {
		return fmt.Errorf("finish delivery of device %d: %w", peerID, err)
	}
	return nil
}

// MarkDelivered records that the device's config reached its user some
// other way (with a payment's notice), so its job does not send it once
// more.
func (s *Store) MarkDelivered(ctx context.Context, peerID int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE peers SET delivered_at = now() WHERE id = $1 AND delivered_at IS NULL`, peerID); err != nil {
		return fmt.Errorf("mark device %d delivered: %w", peerID, err)
	}
	return nil
}

// LiveDevice is an active device of a live subscription and when its
// config was last known to reach the user.
type LiveDevice struct {
	SealedPeer
	DeliveredAt time.Time // zero: not yet
}

// LiveDevices is the user's live subscription and its active devices, for
// a user who asks for access they already have. ErrNoSubscription: no live
// subscription.
func (s *Store) LiveDevices(ctx context.Context, userID int64) (wgbot.Subscription, []LiveDevice, error) {
	sub, err := s.ActiveSubscription(ctx, userID)
	if err != nil {
		return sub, nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+`, p.delivered_at
		FROM peers p WHERE p.subscription_id = $1 AND p.status = 'active' ORDER BY p.id`, sub.ID)
	if err != nil {
		return sub, nil, fmt.Errorf("live devices of user %d: %w", userID, err)
	}
	devices, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LiveDevice, error) {
		var d LiveDevice
		var at *time.Time
		p, err := scanSealedPeerWith(row, &at)
		d.SealedPeer = p
		if at != nil {
			d.DeliveredAt = *at
		}
		return d, err
	})
	if err != nil {
		return sub, nil, fmt.Errorf("live devices of user %d: %w", userID, err)
	}
	return sub, devices, nil
}

// deviceIssuedOpts schedules a device's delivery job when the issuing
// request has had its chance. River compares the time with the database's
// clock; a small skew only makes the job snooze once or run a little late.
func deviceIssuedOpts(peer NewPeer) *river.InsertOpts {
	return &river.InsertOpts{ScheduledAt: time.Now().Add(peer.DeliverAfter)}
}
