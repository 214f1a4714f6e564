package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"wgbot/config"
	"wgbot/secret"
)

// loadNodeKey reads the node's own key pair from NODE_KEY_FILE, or makes
// one on first start.
func loadNodeKey(s config.Settings, log *slog.Logger) (*secret.NodeKeys, error) {
	key, created, err := secret.LoadOrCreateNodeKey(s.NodeKeyFile)
	if err != nil {
		return nil, fmt.Errorf("node key: %w (NODE_KEY_FILE)", err)
	}
	if created {
		log.Info("created the node's key pair; serve seals this server's preshared keys to it", "file", s.NodeKeyFile, "node_key", key.PublicKey())
	}
	return secret.NewNodeKeys(key), nil
}

// checkNodeKey brings the server row's node key and this node's together:
// it registers the node's key where the row has none or a rotation was
// asked for, makes a new key pair when the operator asked for a rotation
// of the key it holds, and forgets the previous key once serve re-sealed
// every peer to the new one. Another node's key on the row is refused.
func (a *app) checkNodeKey(ctx context.Context, keys *secret.NodeKeys) error {
	st, err := a.store.NodeKeyState(ctx, a.server.ID)
	if err != nil {
		return err
	}
	mine := keys.Current().PublicKey()
	switch {
	case st.Rekey && st.Key == mine:
		return a.rotateNodeKey(ctx, keys)
	case st.Key != mine:
		// First start, a rotation whose registration did not get through,
		// or a key file made anew: register_node_key refuses the last one
		// unless the operator asked for it.
		if _, err := a.store.RegisterNodeSealKey(ctx, a.server.ID, mine); err != nil {
			return err
		}
		a.log.Info("registered the node key; serve seals the preshared keys to it", "server", a.server.Name, "node_key", mine)
	case st.SealedKey == mine:
		if keys.ForgetPrevious() {
			a.log.Info("every peer is sealed to the new node key; the old key is forgotten", "server", a.server.Name, "node_key", mine)
		}
	}
	return nil
}

// rotateNodeKey makes a new key pair, puts it in NODE_KEY_FILE (the old
// key stays in memory, to open the peers not yet re-sealed) and registers
// it. The device is never touched: tunnels stay up throughout.
func (a *app) rotateNodeKey(ctx context.Context, keys *secret.NodeKeys) error {
	next, err := secret.GenerateNodeKey()
	if err != nil {
		return err
	}
	// The file first: killed after registering, the node would otherwise
	// come back with a key the row no longer names.
	if err := secret.ReplaceNodeKey(a.settings.NodeKeyFile, next); err != nil {
		return err
	}
	keys.Rotate(next)
	a.log.Info("rotating the node key, as the operator asked", "server", a.server.Name, "node_key", next.PublicKey())
	if _, err := a.store.RegisterNodeSealKey(ctx, a.server.ID, next.PublicKey()); err != nil {
		return fmt.Errorf("register the new node key (retried on the next heartbeat): %w", err)
	}
	return nil
}

// watchNodeKey runs checkNodeKey every NODE_HEARTBEAT, for a rotation the
// operator asks for while the node runs.
func (a *app) watchNodeKey(ctx context.Context, keys *secret.NodeKeys) error {
	tick := time.NewTicker(a.settings.NodeHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := a.checkNodeKey(ctx, keys); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("node key", "err", err)
		}
	}
}
