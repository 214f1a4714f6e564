package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
	"wgbot/jobs/jobargs"
)

// Locations is every location with an active server, by name, each with
// whether a new device can go there now (a server with room, a key and a
// node heard from within downAfter) and the server its buttons name.
func (s *Store) Locations(ctx context.Context, downAfter time.Duration) ([]wgbot.Location, error) {
	rows, err := s.pool.Query(ctx, `SELECT sv.location, array_agg(sv.id ORDER BY sv.id),
			coalesce(bool_or(sv.public_key <> '' AND n.seen_at > now() - $1::interval
				AND (sv.capacity IS NULL OR coalesce(l.peers_held, 0) < sv.capacity)), false)
		FROM servers sv
			LEFT JOIN node_status n ON n.server_id = sv.id
			LEFT JOIN server_load l ON l.server_id = sv.id
		WHERE sv.state = 'active' AND sv.location <> ''
		GROUP BY sv.location ORDER BY sv.location`, downAfter)
	if err != nil {
		return nil, fmt.Errorf("list locations: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (wgbot.Location, error) {
		var l wgbot.Location
		if err := row.Scan(&l.Name, &l.ServerIDs, &l.Up); err != nil {
			return l, err
		}
		l.ServerID = l.ServerIDs[0]
		return l, nil
	})
}

// SetLocation records where the user's new devices go: the location of
// the active server serverID, or with 0 wherever there is room. An id
// that names no active server (forged, or removed since) is refused.
func (s *Store) SetLocation(ctx context.Context, userID, serverID int64) (string, error) {
	if serverID == 0 {
		_, err := s.pool.Exec(ctx, `DELETE FROM user_locations WHERE user_id = $1`, userID)
		return "", err
	}
	var name string
	err := s.pool.QueryRow(ctx, `INSERT INTO user_locations (user_id, location)
			SELECT $1, location FROM servers WHERE id = $2 AND state = 'active' AND location <> ''
		ON CONFLICT (user_id) DO UPDATE SET location = EXCLUDED.location, chosen_at = now()
		RETURNING location`, userID, serverID).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", wgbot.ErrUnknownLocation
	}
	if err != nil {
		return "", fmt.Errorf("set location of user %d: %w", userID, err)
	}
	return name, nil
}

// MoveDevice gives the user's device peerID a new peer on serverID, in the
// same subscription and under the same name, and marks the old peer to be
// revoked at retireAt (RetireMoved) unless the user removes it earlier. A
// move may go one device over the limit while the old peer lives, never
// more: a second move waits until the first one's old peer is gone.
func (s *Store) MoveDevice(ctx context.Context, userID, peerID, serverID int64, peer NewPeer, retireAt time.Time) (wgbot.Peer, wgbot.Change, error) {
	var p wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
			WHERE user_id = $1 AND status = 'active' FOR UPDATE`, userID))
		if err != nil {
			return err
		}
		var name string
		var oldServer int64
		var retiring bool
		err = tx.QueryRow(ctx, `SELECT name, server_id, retire_at IS NOT NULL FROM peers
			WHERE id = $1 AND subscription_id = $2 AND status = 'active' FOR UPDATE`, peerID, sub.ID).Scan(&name, &oldServer, &retiring)
		if errors.Is(err, pgx.ErrNoRows) {
			return wgbot.ErrPeerNotFound
		}
		if err != nil {
			return err
		}
		if retiring {
			return wgbot.ErrMoveInProgress
		}
		if oldServer == serverID {
			return wgbot.ErrSameLocation
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers WHERE subscription_id = $1 AND status <> 'revoked'`, sub.ID).Scan(&n); err != nil {
			return err
		}
		if n > max(sub.DeviceLimit, 1) {
			return wgbot.ErrMoveInProgress
		}
		if _, err := tx.Exec(ctx, `UPDATE peers SET retire_at = $2 WHERE id = $1`, peerID, retireAt); err != nil {
			return err
		}
		job := jobargs.DeviceIssued{PublicKey: peer.Secrets.PublicKey, Reason: jobargs.IssuedMoved, Replaces: peerID}
		if err := s.insertJob(ctx, tx, job, deviceIssuedOpts(peer)); err != nil {
			return err
		}
		peer.Name = name
		p, ch, err = s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
		return err
	})
	if err != nil {
		return p, ch, fmt.Errorf("move device %d of user %d: %w", peerID, userID, err)
	}
	return p, ch, nil
}

// RetireMoved revokes the old peers of moved devices whose time is up,
// at most limit of them, and returns the changes to apply.
func (s *Store) RetireMoved(ctx context.Context, limit int) ([]wgbot.Change, error) {
	var changes []wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE peers SET status = 'revoked', revoked_at = now()
			WHERE id IN (SELECT id FROM peers WHERE retire_at <= now() AND status <> 'revoked'
				ORDER BY retire_at LIMIT $1 FOR UPDATE SKIP LOCKED)
			RETURNING server_id, ip`, limit)
		if err != nil {
			return err
		}
		servers, err := s.freeAddresses(ctx, tx, rows)
		if err != nil {
			return err
		}
		changes, err = bumpRevisions(ctx, tx, servers)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retire moved devices: %w", err)
	}
	return changes, nil
}
