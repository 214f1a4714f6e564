package service

import (
	"context"
	"time"

	"wgbot"
)

// defaultMoveGrace is how long a moved device keeps its old peer when
// Config.MoveGrace is not set: a day to import the new config.
const defaultMoveGrace = 24 * time.Hour

// retireBatch bounds the old peers one sweep revokes.
const retireBatch = 500

// Locations is where users may put their devices. With a single host
// (Config.PickServers off) there is nothing to choose and it is empty.
func (s *Service) Locations(ctx context.Context) ([]wgbot.Location, error) {
	if !s.cfg.PickServers {
		return nil, nil
	}
	return s.store.Locations(ctx, s.cfg.NodeDownAfter)
}

// SetLocation makes the location of server serverID the one the user's
// new devices go to (0: wherever there is room) and returns its name.
func (s *Service) SetLocation(ctx context.Context, user wgbot.User, serverID int64) (string, error) {
	if !s.cfg.PickServers {
		return "", wgbot.ErrUnknownLocation
	}
	return s.store.SetLocation(ctx, user.ID, serverID)
}

// MoveDevice moves one of the user's devices to the location of server
// serverID: a new peer there, with a new config the caller delivers
// through SendIssued (its job sends it if the caller does not). The old
// peer keeps working until the user removes it or MoveGrace has passed.
func (s *Service) MoveDevice(ctx context.Context, user wgbot.User, peerID, serverID int64) (d Delivery, err error) {
	defer s.observe("move_device", time.Now(), &err)
	if user.Banned {
		return Delivery{}, wgbot.ErrBanned
	}
	if !s.cfg.PickServers {
		return Delivery{}, wgbot.ErrUnknownLocation
	}
	srv, err := s.pick(ctx, user.ID, serverID)
	if err != nil {
		return Delivery{}, err
	}
	peer, priv, psk, err := s.newPeer("")
	if err != nil {
		return Delivery{}, err
	}
	grace := s.cfg.MoveGrace
	if grace <= 0 {
		grace = defaultMoveGrace
	}
	p, ch, err := s.store.MoveDevice(ctx, user.ID, peerID, srv.ID, peer, s.clock().Add(grace))
	if err != nil {
		return Delivery{}, err
	}
	// The new peer lives on another host: its node applies it. Waiting
	// for it makes the config work when it arrives; if the node is slow,
	// the device's job delivers it once applied.
	if err := s.provision(ctx, ch); err != nil {
		return Delivery{}, err
	}
	sub, err := s.store.ActiveSubscription(ctx, user.ID)
	if err != nil {
		return Delivery{}, err
	}
	return s.delivery(ctx, p, sub, priv, psk)
}

// RetireMoved revokes the old peers of moved devices whose grace is over
// (the sweep job) and returns how many servers it changed.
func (s *Service) RetireMoved(ctx context.Context) (int, error) {
	changes, err := s.store.RetireMoved(ctx, retireBatch)
	for _, ch := range changes {
		s.provisionLater(ctx, ch)
	}
	return len(changes), err
}
