package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"wgbot/postgres"
	"wgbot/secret"
)

// SealNodeKeys seals the preshared keys of every server's peers to that
// server's node key where they are not yet: after a node registered its
// first key or a new one (`servers rekey`), and for peers issued while the
// key changed, imported or moved. Only a process holding the master key
// can, so serve runs it (SealNodeKeysEvery); the node never needs the
// master key. It returns how many peers it sealed.
func (s *Service) SealNodeKeys(ctx context.Context) (int, error) {
	targets, err := s.store.ServersToSeal(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, t := range targets {
		n, _, err := s.SealNodeKey(ctx, t.ServerID, t.Key)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// SealNodeKey seals the preshared keys of the server's peers to its node
// key key, and reports how many it sealed; done is false if the key
// changed meanwhile or another process held some of the peers.
func (s *Service) SealNodeKey(ctx context.Context, serverID int64, key string) (n int, done bool, err error) {
	n, done, err = s.store.SealNodePeers(ctx, serverID, key, func(p postgres.SealedPeer) ([]byte, error) {
		psk, err := s.keys.OpenPresharedKey(p.Secrets)
		if err != nil {
			return nil, err
		}
		return secret.SealToNode(key, p.PublicKey, psk)
	})
	if err == nil && n > 0 {
		s.log.InfoContext(ctx, "sealed preshared keys to the node key", "server", serverID, "node_key", key, "peers", n, "complete", done)
	}
	return n, done, err
}

// SealNodeKeysEvery runs SealNodeKeys every interval until ctx ends; a
// failure is logged and retried on the next round. With several serve
// processes each runs it: a peer's row lock lets one of them seal it.
func (s *Service) SealNodeKeysEvery(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := s.SealNodeKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "seal preshared keys to the node keys; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// ErrNodeKeyNotRotated: `servers rekey` waited, and the node did not
// register a new key in time.
var ErrNodeKeyNotRotated = errors.New("the node did not register a new key in time")

// RotateNodeKey asks the node of server name for a new key pair, waits
// (up to wait) for it to register the new public key, and re-seals the
// server's preshared keys to it. Until it registers, nothing changes; a
// serve process re-seals in any case once it does. Tunnels stay up: the
// node keeps its device as applied, and opens with its old key until
// every peer is re-sealed.
func (s *Service) RotateNodeKey(ctx context.Context, name string, wait time.Duration) (newKey string, sealed int, err error) {
	srv, before, err := s.store.RequestNodeRekey(ctx, name)
	if err != nil {
		return "", 0, err
	}
	deadline := time.Now().Add(wait)
	for {
		st, err := s.store.NodeKeyState(ctx, srv.ID)
		if err != nil {
			return "", 0, err
		}
		if !st.Rekey && st.Key != "" && st.Key != before.Key {
			// A serve process may be sealing the same rows: come back
			// until every peer is sealed to the new key.
			n, done, err := s.SealNodeKey(ctx, srv.ID, st.Key)
			sealed += n
			if err != nil || done {
				return st.Key, sealed, err
			}
			if time.Now().After(deadline) {
				return st.Key, sealed, fmt.Errorf("server %s: some peers are not re-sealed yet (busy); a serve process finishes them within seconds", name)
			}
		} else if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("server %s: %w (is its `wgbot node` running? It rotates on its next heartbeat or start, and serve re-seals then)",
				name, ErrNodeKeyNotRotated)
		}
		select {
		case <-ctx.Done():
			return "", 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
