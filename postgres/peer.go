package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"wgbot/jobs/jobargs"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// PurgeDisabled revokes peers that stayed disabled (their subscription
// expired) since before cutoff, freeing their addresses: the renewal grace
// period is over.
func (s *Store) PurgeDisabled(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		// A device the quota switched off belongs to a live subscription:
		// it waits for the next month, however long that is.
		rows, err := tx.Query(ctx, `UPDATE peers SET status = 'revoked', revoked_at = now()
			WHERE status = 'disabled' AND disabled_at < $1 AND disabled_reason IS NULL RETURNING server_id, ip`, cutoff)
		if err != nil {
			return err
		}
		servers, err := s.freeAddresses(ctx, tx, rows)
		n = len(servers)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge disabled peers: %w", err)
	}
	return n, nil
}

// PeerFilter narrows ListPeers; zero fields match everything.
type PeerFilter struct {
	Server string // server name
	Status string // wgbot.PeerActive, PeerDisabled or PeerRevoked
	UserID int64
}

// PeerListing is a peer with whom it belongs to, for the operator.
type PeerListing struct {
	wgbot.Peer
	Server     string
	TelegramID int64
	Username   string
	// Usage is this month's traffic and the last handshake; nil when no
	// collection has seen the peer on its device.
	Usage *wgbot.Usage
}

// ListPeers lists peers in id order, revoked ones included unless the
// filter says otherwise.
func (s *Store) ListPeers(ctx context.Context, f PeerFilter) ([]PeerListing, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.id, p.subscription_id, p.server_id, p.name, p.ip, p.ip6, p.public_key, p.status, p.created_at,
			sv.name, COALESCE(u.telegram_id, 0), COALESCE(u.username, ''),
			c.peer_id IS NOT NULL, c.last_handshake, coalesce(pu.rx, 0), coalesce(pu.tx, 0)
		FROM peers p
		JOIN servers sv ON sv.id = p.server_id
		JOIN subscriptions s ON s.id = p.subscription_id
		LEFT JOIN users u ON u.id = s.user_id -- none: imported, not claimed yet
		LEFT JOIN peer_counters c ON c.peer_id = p.id
		LEFT JOIN peer_usage pu ON pu.peer_id = p.id AND pu.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date
		WHERE ($1 = '' OR sv.name = $1) AND ($2 = '' OR p.status = $2) AND ($3 = 0 OR u.id = $3)
		ORDER BY p.id`, f.Server, f.Status, f.UserID)
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PeerListing, error) {
		var pl PeerListing
		p := &pl.Peer
		var ip6 *netip.Addr
		var collected bool
		var hs *time.Time
		var u wgbot.Usage
		err := row.Scan(&p.ID, &p.SubscriptionID, &p.ServerID, &p.Name, &p.IP, &ip6, &p.PublicKey, &p.Status, &p.CreatedAt,
			&pl.Server, &pl.TelegramID, &pl.Username, &collected, &hs, &u.Received, &u.Transmitted)
		if ip6 != nil {
			p.IP6 = *ip6
		}
		if collected {
			if hs != nil {
				u.LastSeen = *hs
			}
			pl.Usage = &u
		}
		return pl, err
	})
	if err != nil {
		return nil, fmt.Errorf("list peers: %w", err)
	}
	return list, nil
}

// NewPeer is what the allocator needs to create a peer besides an address.
type NewPeer struct {
	Name    string
	Secrets wgbot.PeerSecrets
	// DeliverAfter is how long the issuing request has to send the
	// device's config itself; its delivery job is scheduled that far ahead.
	DeliverAfter time.Duration
	// Overfill lets the device past the server's capacity: a paid or an
	// operator's device is never refused for it.
	Overfill bool
	// SealForNode seals the preshared key to the server's node key
	// (base64), in the issuing transaction; nil, or a server with no node
	// key yet, leaves it to serve's sealing job.
	SealForNode func(nodeKey string) ([]byte, error)
}

// AddPeer adds a device to the user's live subscription within its limit,
// with the job that delivers its config.
// The subscription row lock serializes two adds racing for the last slot.
func (s *Store) AddPeer(ctx context.Context, userID, serverID int64, peer NewPeer) (wgbot.Peer, wgbot.Change, error) {
	var p wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		sub, err := scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions
			WHERE user_id = $1 AND status = 'active' FOR UPDATE`, userID))
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers WHERE subscription_id = $1 AND status <> 'revoked'`, sub.ID).Scan(&n); err != nil {
			return err
		}
		if err := wgbot.CanAddDevice(sub, n); err != nil {
			return err
		}
		if err := s.insertJob(ctx, tx, jobargs.DeviceIssued{PublicKey: peer.Secrets.PublicKey, Reason: jobargs.IssuedDevice}, deviceIssuedOpts(peer)); err != nil {
			return err
		}
		p, ch, err = s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
		return err
	})
	if err != nil {
		return p, ch, fmt.Errorf("add device for user %d: %w", userID, err)
	}
	return p, ch, nil
}

// RemovePeer revokes one of the user's devices. Ownership is checked here,
// in the query, so a forged request for another user's peer finds nothing.
// The address becomes reusable when this commits (after the quarantine).
func (s *Store) RemovePeer(ctx context.Context, userID, peerID int64) (wgbot.Change, error) {
	var ch wgbot.Change
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE peers p SET status = 'revoked', revoked_at = now()
			FROM subscriptions s WHERE p.id = $2 AND p.subscription_id = s.id AND s.user_id = $1 AND p.status <> 'revoked'
			RETURNING p.server_id, p.ip`, userID, peerID)
		if err != nil {
			return err
		}
		freed, err := s.freeAddresses(ctx, tx, rows)
		if err != nil {
			return err
		}
		if len(freed) == 0 {
			return wgbot.ErrPeerNotFound
		}
		ch, err = bumpRevision(ctx, tx, freed[0])
		return err
	})
	if err != nil {
		return ch, fmt.Errorf("remove device %d of user %d: %w", peerID, userID, err)
	}
	return ch, nil
}

// DeletePeer removes a peer that was never delivered (its first apply
// failed) as if it had not been issued; for a trial the trial row goes too,
// so the trial is not burned. The address is free again at once.
func (s *Store) DeletePeer(ctx context.Context, peerID int64, dropTrial bool) (wgbot.Change, error) {
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var serverID, subID int64
		var ip netip.Addr
		// A peer revoked meanwhile (its address may already be someone
		// else's), one whose user has paid meanwhile (the payment bought
		// it) or one whose config is on its way or delivered is not taken
		// back.
		err := tx.QueryRow(ctx, `DELETE FROM peers p WHERE p.id = $1 AND p.status <> 'revoked'
			AND p.delivered_at IS NULL AND (p.delivery_claimed_until IS NULL OR p.delivery_claimed_until <= now())
			AND NOT EXISTS (SELECT 1 FROM payments pay JOIN subscriptions s ON s.user_id = pay.user_id
				WHERE s.id = p.subscription_id AND pay.applied_at >= p.created_at)
			RETURNING p.server_id, p.subscription_id, p.ip`, peerID).Scan(&serverID, &subID, &ip)
		if errors.Is(err, pgx.ErrNoRows) {
			return wgbot.ErrPeerNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO free_addresses (server_id, ip) VALUES ($1, $2) ON CONFLICT DO NOTHING`, serverID, ip); err != nil {
			return err
		}
		if dropTrial {
			if _, err := tx.Exec(ctx, `DELETE FROM subscriptions WHERE id = $1 AND is_trial
				AND NOT EXISTS (SELECT 1 FROM peers WHERE subscription_id = $1)`, subID); err != nil {
				return err
			}
		}
		ch, err = bumpRevision(ctx, tx, serverID)
		return err
	})
	if err != nil {
		return ch, fmt.Errorf("delete undelivered peer %d: %w", peerID, err)
	}
	return ch, nil
}

// SealedPeer is a peer with its sealed keys, for config delivery and the
// reconciler.
type SealedPeer struct {
	wgbot.Peer
	Secrets wgbot.PeerSecrets
	// Keepalive is an imported peer's own persistent keepalive in seconds,
	// as the server it came from had it; nil: the server's setting.
	Keepalive *int
}

const peerColumns = `p.id, p.subscription_id, p.server_id, p.name, p.ip, p.ip6, p.public_key, p.status, p.created_at,
	p.private_key_enc, p.preshared_key_enc, p.key_id, p.number, p.retire_at, p.keepalive,
	p.psk_node_sealed, coalesce(p.psk_node_key, '')`

func scanSealedPeer(row pgx.CollectableRow) (SealedPeer, error) { return scanSealedPeerWith(row) }

// scanSealedPeerWith scans peerColumns, then any further columns into extra.
func scanSealedPeerWith(row pgx.Row, extra ...any) (SealedPeer, error) {
	var p SealedPeer
	var ip6 *netip.Addr
	var retire *time.Time
	err := row.Scan(append([]any{&p.ID, &p.SubscriptionID, &p.ServerID, &p.Name, &p.IP, &ip6, &p.PublicKey, &p.Status, &p.CreatedAt,
		&p.Secrets.PrivateKeySealed, &p.Secrets.PresharedSealed, &p.Secrets.KeyID, &p.Number, &retire, &p.Keepalive,
		&p.Secrets.NodeSealed, &p.Secrets.NodeKey}, extra...)...)
	if ip6 != nil {
		p.IP6 = *ip6
	}
	if retire != nil {
		p.RetireAt = *retire
	}
	p.Secrets.PublicKey = p.PublicKey
	return p, err
}

// DesiredPeers passes the server's active peers to each, in id order, and
// returns the revision they belong to, read in one snapshot so the
// reconciler knows exactly what it applied. The rows are streamed, not
// collected: at 50,000 peers a slice of them, grown by appending, held
// tens of MB at the moment of a full reconcile. An error from each stops
// the read and is returned. Before the first row, expect gets how many
// there are (server_load's count, in the same snapshot), so the caller
// can size what it builds from them.
func (s *Store) DesiredPeers(ctx context.Context, serverID int64, expect func(n int), each func(SealedPeer) error) (int64, error) {
	var revision int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT sv.revision, `+ServerActivePeers+` FROM servers sv WHERE sv.id = $1`, serverID).Scan(&revision, &n); err != nil {
			return err
		}
		expect(n)
		rows, err := tx.Query(ctx, `SELECT `+peerColumns+` FROM peers p WHERE p.server_id = $1 AND p.status = 'active' ORDER BY p.id`, serverID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanSealedPeer(rows)
			if err != nil {
				return err
			}
			if err := each(p); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("read desired peers of server %d: %w", serverID, err)
	}
	return revision, nil
}

// UserPeer returns one of the user's devices with its sealed keys; another
// user's peer id is not found.
func (s *Store) UserPeer(ctx context.Context, userID, peerID int64) (SealedPeer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+` FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
		WHERE p.id = $2 AND s.user_id = $1 AND p.status <> 'revoked'`, userID, peerID)
	if err != nil {
		return SealedPeer{}, err
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanSealedPeer)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, wgbot.ErrPeerNotFound
	}
	return p, err
}

// UserPeers lists the user's devices that are not revoked.
func (s *Store) UserPeers(ctx context.Context, userID int64) ([]wgbot.Peer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+` FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
		WHERE s.user_id = $1 AND p.status <> 'revoked' ORDER BY p.id`, userID)
	if err != nil {
		return nil, err
	}
	sealed, err := pgx.CollectRows(rows, scanSealedPeer)
	peers := make([]wgbot.Peer, len(sealed))
	for i, p := range sealed {
		peers[i] = p.Peer
	}
	return peers, err
}

// ResealPeers re-seals, in batches of one transaction each, the keys of
// every peer sealed by a key other than currentID, with what reseal
// returns; afterwards the old master key can be retired.
func (s *Store) ResealPeers(ctx context.Context, currentID string, reseal func(SealedPeer) (wgbot.PeerSecrets, error)) (int, error) {
	total := 0
	for {
		n := 0
		err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT `+peerColumns+` FROM peers p WHERE p.key_id <> $1 ORDER BY p.id LIMIT 500 FOR UPDATE SKIP LOCKED`, currentID)
			if err != nil {
				return err
			}
			peers, err := pgx.CollectRows(rows, scanSealedPeer)
			if err != nil {
				return err
			}
			for _, p := range peers {
				sec, err := reseal(p)
				if err != nil {
					return fmt.Errorf("peer %d: %w", p.ID, err)
				}
				if _, err := tx.Exec(ctx, `UPDATE peers SET private_key_enc = $2, preshared_key_enc = $3, key_id = $4 WHERE id = $1`,
					p.ID, sec.PrivateKeySealed, sec.PresharedSealed, sec.KeyID); err != nil {
					return err
				}
			}
			n = len(peers)
			return nil
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// StartRename records that the bot waits, until until, for a new name of
// the user's device peerID; ErrPeerNotFound unless it is theirs and not
// revoked.
func (s *Store) StartRename(ctx context.Context, userID, peerID int64, until time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET renaming_peer_id = $2, renaming_until = $3
		WHERE id = $1 AND EXISTS (SELECT 1 FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
			WHERE p.id = $2 AND s.user_id = $1 AND p.status <> 'revoked')`, userID, peerID, until)
	if err != nil {
		return fmt.Errorf("start renaming device %d: %w", peerID, err)
	}
	if tag.RowsAffected() == 0 {
		return wgbot.ErrPeerNotFound
	}
	return nil
}

// PendingRename is the device whose new name the bot waits for at now, or
// 0.
func (s *Store) PendingRename(ctx context.Context, userID int64, now time.Time) (int64, error) {
	var id *int64
	err := s.pool.QueryRow(ctx, `SELECT renaming_peer_id FROM users WHERE id = $1 AND renaming_until > $2`, userID, now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) || id == nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read pending rename of user %d: %w", userID, err)
	}
	return *id, nil
}

// StopRename stops waiting for a new device name.
func (s *Store) StopRename(ctx context.Context, userID int64) error {
	// Every button press but Rename comes here: write only when waiting.
	_, err := s.pool.Exec(ctx, `UPDATE users SET renaming_peer_id = NULL, renaming_until = NULL
		WHERE id = $1 AND renaming_peer_id IS NOT NULL`, userID)
	return err
}

// RenamePeer names the user's device and stops waiting for a name:
// ErrPeerNotFound unless the device is theirs and not revoked,
// ErrDeviceNameTaken if another of their devices has the name (in any
// case). The user's row is locked first (the UPDATE that ends the
// pending rename) and the name checked in a later statement: under READ
// COMMITTED each statement reads what committed before it began, so a
// rename that waited for the lock sees the one that held it. (A check in
// the locking statement would read the snapshot taken before the wait,
// and two renames could take one name.) An UPDATE of these columns locks
// FOR NO KEY UPDATE, like OpenOrder, so inserts that reference the user
// are not held up.
func (s *Store) RenamePeer(ctx context.Context, userID, peerID int64, name string) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET renaming_peer_id = NULL, renaming_until = NULL WHERE id = $1`, userID)
		if err != nil {
			return fmt.Errorf("rename device %d: %w", peerID, err)
		}
		if tag.RowsAffected() == 0 {
			return wgbot.ErrPeerNotFound
		}
		var taken bool
		err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
				WHERE s.user_id = $1 AND p.id <> $2 AND p.status <> 'revoked' AND lower(p.name) = lower($3))`,
			userID, peerID, name).Scan(&taken)
		if err != nil {
			return fmt.Errorf("rename device %d: %w", peerID, err)
		}
		if taken {
			return wgbot.ErrDeviceNameTaken
		}
		tag, err = tx.Exec(ctx, `UPDATE peers p SET name = $3 FROM subscriptions s
			WHERE s.id = p.subscription_id AND s.user_id = $1 AND p.id = $2 AND p.status <> 'revoked'`, userID, peerID, name)
		if err != nil {
			return fmt.Errorf("rename device %d: %w", peerID, err)
		}
		if tag.RowsAffected() == 0 {
			return wgbot.ErrPeerNotFound
		}
		return nil
	})
}
