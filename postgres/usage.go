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

// PeerSample is one peer's counters as one device read gave them.
type PeerSample struct {
	PublicKey     string
	Received      int64     // bytes the server received from the device (its upload)
	Transmitted   int64     // bytes the server sent to it (its download)
	LastHandshake time.Time // zero: never
}

// recordUsage is the whole collection write, one statement. The counters
// upsert returns each peer's previous raw values (prev_*, set from the
// row as it was under the row's lock), so the delta never comes from a
// stale snapshot: two collectors writing at once count each byte once, and
// a sample older than the stored one (a slower collector) is skipped by the
// WHERE. A counter lower than its last value was reset (the interface
// restarted, the peer was re-added): the delta is then the new value.
// Rows are written in peer order, so two writers never deadlock. Peers
// the database does not know (hand-made ones) join nothing.
const recordUsage = `WITH s AS (
		SELECT p.id, s.rx, s.tx, s.hs
		FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[]) AS s (key, rx, tx, hs)
		JOIN peers p ON p.public_key = s.key AND p.server_id = $1),
	c AS (
		INSERT INTO peer_counters AS c (peer_id, rx, tx, last_handshake, sampled_at)
		SELECT id, rx, tx, hs, $2 FROM s ORDER BY id
		ON CONFLICT (peer_id) DO UPDATE SET prev_rx = c.rx, prev_tx = c.tx, rx = EXCLUDED.rx, tx = EXCLUDED.tx,
			last_handshake = greatest(c.last_handshake, EXCLUDED.last_handshake), sampled_at = EXCLUDED.sampled_at
		WHERE c.sampled_at < EXCLUDED.sampled_at
		RETURNING peer_id, last_handshake,
			CASE WHEN rx >= prev_rx THEN rx - prev_rx ELSE rx END AS drx,
			CASE WHEN tx >= prev_tx THEN tx - prev_tx ELSE tx END AS dtx),
	u AS (
		INSERT INTO peer_usage AS u (peer_id, month, rx, tx, last_handshake)
		SELECT peer_id, $7::date, drx, dtx, CASE WHEN last_handshake >= $7::date AT TIME ZONE 'UTC' THEN last_handshake END FROM c
		WHERE drx > 0 OR dtx > 0 OR last_handshake >= $7::date AT TIME ZONE 'UTC'
		ORDER BY peer_id
		ON CONFLICT (peer_id, month) DO UPDATE SET rx = u.rx + EXCLUDED.rx, tx = u.tx + EXCLUDED.tx,
			last_handshake = greatest(u.last_handshake, EXCLUDED.last_handshake)
		WHERE EXCLUDED.rx > 0 OR EXCLUDED.tx > 0 OR u.last_handshake IS DISTINCT FROM EXCLUDED.last_handshake)
	INSERT INTO usage_collections AS k (server_id, collected_at, rx, tx)
	SELECT $1, $2, coalesce(sum(drx), 0), coalesce(sum(dtx), 0) FROM c
	ON CONFLICT (server_id) DO UPDATE SET collected_at = greatest(k.collected_at, EXCLUDED.collected_at),
		rx = k.rx + EXCLUDED.rx, tx = k.tx + EXCLUDED.tx`

// RecordUsage adds one collection of server serverID's device, read at
// at, to the month totals: one statement whatever the number of peers.
// Send only the peers whose counters or handshake changed since the last
// collection that was recorded (all of them after a start); an empty
// collection still records that the device was read.
func (s *Store) RecordUsage(ctx context.Context, serverID int64, at time.Time, samples []PeerSample) error {
	keys := make([]string, len(samples))
	rx := make([]int64, len(samples))
	tx := make([]int64, len(samples))
	hs := make([]*time.Time, len(samples))
	for i, p := range samples {
		keys[i], rx[i], tx[i] = p.PublicKey, p.Received, p.Transmitted
		if !p.LastHandshake.IsZero() {
			t := p.LastHandshake
			hs[i] = &t
		}
	}
	if _, err := s.pool.Exec(ctx, recordUsage, serverID, at, keys, rx, tx, hs, month(at)); err != nil {
		return fmt.Errorf("record usage of server %d (%d peers): %w", serverID, len(samples), err)
	}
	return nil
}

// month is the first day of t's calendar month, UTC: the key of peer_usage.
func month(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// PeerUsage is the traffic of the month holding now of each of peerIDs,
// with its last handshake ever; a peer never seen on a device is absent.
func (s *Store) PeerUsage(ctx context.Context, now time.Time, peerIDs []int64) (map[int64]wgbot.Usage, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.peer_id, coalesce(u.rx, 0), coalesce(u.tx, 0), c.last_handshake
		FROM peer_counters c LEFT JOIN peer_usage u ON u.peer_id = c.peer_id AND u.month = $2
		WHERE c.peer_id = ANY($1)`, peerIDs, month(now))
	if err != nil {
		return nil, fmt.Errorf("usage of %d peers: %w", len(peerIDs), err)
	}
	defer rows.Close()
	out := make(map[int64]wgbot.Usage, len(peerIDs))
	for rows.Next() {
		var id int64
		var u wgbot.Usage
		var hs *time.Time
		if err := rows.Scan(&id, &u.Received, &u.Transmitted, &hs); err != nil {
			return nil, err
		}
		if hs != nil {
			u.LastSeen = *hs
		}
		out[id] = u
	}
	return out, rows.Err()
}

// TopConsumers are the users with the most traffic in the month holding
// now, most first, at most limit.
func (s *Store) TopConsumers(ctx context.Context, now time.Time, limit int) ([]wgbot.Consumer, error) {
	rows, err := s.pool.Query(ctx, `SELECT us.telegram_id, us.username, sum(u.rx)::bigint, sum(u.tx)::bigint, max(u.last_handshake)
		FROM peer_usage u JOIN peers p ON p.id = u.peer_id JOIN subscriptions sb ON sb.id = p.subscription_id
			JOIN users us ON us.id = sb.user_id
		WHERE u.month = $1
		GROUP BY us.id ORDER BY sum(u.rx + u.tx) DESC, us.telegram_id LIMIT $2`, month(now), limit)
	if err != nil {
		return nil, fmt.Errorf("top consumers: %w", err)
	}
	defer rows.Close()
	var out []wgbot.Consumer
	for rows.Next() {
		var c wgbot.Consumer
		var hs *time.Time
		if err := rows.Scan(&c.TelegramID, &c.Username, &c.Received, &c.Transmitted, &hs); err != nil {
			return nil, err
		}
		if hs != nil {
			c.LastSeen = *hs
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ServerTraffic is the bytes every server's device counted since
// collection began, by server name, for /metrics.
func (s *Store) ServerTraffic(ctx context.Context) (map[string]wgbot.Usage, error) {
	rows, err := s.pool.Query(ctx, `SELECT sv.name, k.rx, k.tx FROM usage_collections k JOIN servers sv ON sv.id = k.server_id`)
	if err != nil {
		return nil, fmt.Errorf("server traffic: %w", err)
	}
	defer rows.Close()
	out := map[string]wgbot.Usage{}
	for rows.Next() {
		var name string
		var u wgbot.Usage
		if err := rows.Scan(&name, &u.Received, &u.Transmitted); err != nil {
			return nil, err
		}
		out[name] = u
	}
	return out, rows.Err()
}

// connectionCheckWindow is how long after delivery a device may wait for
// a collection that can tell whether it connected; past it, it is let go
// unchecked (its server collects nothing, or its node was down all along).
const connectionCheckWindow = 24 * time.Hour

// QueueConnectionChecks judges the delivered devices whose config reached
// their user more than after ago and that were not judged yet, once each:
// a device with no handshake, still active, on a server whose device was
// collected after its deadline gets a connection_tip job, in the same
// transaction that marks it checked. A device that connected, was removed,
// or waited past connectionCheckWindow is marked with no job; one whose
// server has not been collected since its deadline waits for the next run.
// A device that connected once is never judged again, however long it
// stays away. It returns the number of tips queued.
func (s *Store) QueueConnectionChecks(ctx context.Context, now time.Time, after time.Duration) (int, error) {
	if s.jobs == nil {
		return 0, nil
	}
	var tips []jobargs.ConnectionTip
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH due AS (
				SELECT p.id, p.server_id, p.delivered_at, p.status,
					EXISTS (SELECT 1 FROM peer_counters c WHERE c.peer_id = p.id AND c.last_handshake IS NOT NULL) AS connected,
					coalesce((SELECT k.collected_at >= p.delivered_at + $2::interval FROM usage_collections k
						WHERE k.server_id = p.server_id), false) AS known
				FROM peers p
				WHERE p.connection_checked_at IS NULL AND p.delivered_at IS NOT NULL AND p.delivered_at <= $1::timestamptz - $2::interval
				ORDER BY p.delivered_at LIMIT 1000 FOR UPDATE OF p SKIP LOCKED)
			UPDATE peers p SET connection_checked_at = $1 FROM due d
			WHERE p.id = d.id AND (d.connected OR d.known OR d.status <> 'active' OR d.delivered_at < $1::timestamptz - $3::interval)
			RETURNING p.id, NOT d.connected AND d.known AND d.status = 'active' AND d.delivered_at >= $1::timestamptz - $3::interval`, now, after, connectionCheckWindow)
		if err != nil {
			return err
		}
		tips = tips[:0]
		var id int64
		var tip bool
		if _, err := pgx.ForEachRow(rows, []any{&id, &tip}, func() error {
			if tip {
				tips = append(tips, jobargs.ConnectionTip{PeerID: id})
			}
			return nil
		}); err != nil {
			return err
		}
		for _, a := range tips {
			if err := s.insertJob(ctx, tx, a, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue connection checks: %w", err)
	}
	return len(tips), nil
}

// ConnectionTipState is what the connection tip's job checks before it
// sends: the device, its user, and whether it has connected since it was
// judged (then the tip is not sent).
func (s *Store) ConnectionTipState(ctx context.Context, peerID int64) (wgbot.User, wgbot.Peer, bool, error) {
	var userID int64
	var connected bool
	rows, err := s.pool.Query(ctx, `SELECT `+peerColumns+`, s.user_id,
			EXISTS (SELECT 1 FROM peer_counters c WHERE c.peer_id = p.id AND c.last_handshake IS NOT NULL)
		FROM peers p JOIN subscriptions s ON s.id = p.subscription_id WHERE p.id = $1`, peerID)
	if err != nil {
		return wgbot.User{}, wgbot.Peer{}, false, fmt.Errorf("connection tip of device %d: %w", peerID, err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (SealedPeer, error) {
		return scanSealedPeerWith(row, &userID, &connected)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return wgbot.User{}, wgbot.Peer{}, false, wgbot.ErrPeerNotFound
	}
	if err != nil {
		return wgbot.User{}, wgbot.Peer{}, false, fmt.Errorf("connection tip of device %d: %w", peerID, err)
	}
	u, err := s.UserByID(ctx, userID)
	return u, p.Peer, connected, err
}
