package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PeerChanges is what changed on a server since a revision the reconciler
// applied: the current rows of the peers that changed (Active holds those
// still active, Gone the ids of the others), read in one snapshot with the
// server's revision.
type PeerChanges struct {
	Revision int64
	Active   []SealedPeer
	Gone     []int64
	// Full says the log no longer reaches back to the revision asked for
	// (it was pruned): the caller must reconcile in full.
	Full bool
	Rows int // change-log rows read, for tests and metrics
}

// ChangesSince reads the peers of the server that changed after revision
// since. Its cost is the number of changes, not the number of peers.
func (s *Store) ChangesSince(ctx context.Context, serverID, since int64) (PeerChanges, error) {
	var c PeerChanges
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var pruned int64
		if err := tx.QueryRow(ctx, `SELECT sv.revision, coalesce(pc.revision, 0) FROM servers sv
			LEFT JOIN peer_changes_pruned pc ON pc.server_id = sv.id WHERE sv.id = $1`, serverID).Scan(&c.Revision, &pruned); err != nil {
			return err
		}
		if since < pruned || since > c.Revision {
			c.Full = true // too old for the log, or from another database
			return nil
		}
		if since == c.Revision {
			return nil
		}
		var ids []int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT peer_id), '{}'), count(*) FROM peer_changes
			WHERE server_id = $1 AND revision > $2`, serverID, since).Scan(&ids, &c.Rows); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+peerColumns+` FROM peers p
			WHERE p.id = ANY($2) AND p.server_id = $1 AND p.status = 'active' ORDER BY p.id`, serverID, ids)
		if err != nil {
			return err
		}
		if c.Active, err = pgx.CollectRows(rows, scanSealedPeer); err != nil {
			return err
		}
		active := make(map[int64]bool, len(c.Active))
		for _, p := range c.Active {
			active[p.ID] = true
		}
		for _, id := range ids {
			if !active[id] {
				c.Gone = append(c.Gone, id)
			}
		}
		return nil
	})
	if err != nil {
		return PeerChanges{}, fmt.Errorf("read peer changes of server %d since revision %d: %w", serverID, since, err)
	}
	return c, nil
}

// PruneChanges drops the change log of the server up to revision below; a
// reconciler that applied less than that reconciles in full next time.
func (s *Store) PruneChanges(ctx context.Context, serverID, below int64) error {
	if below <= 0 {
		return nil
	}
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO peer_changes_pruned (server_id, revision) VALUES ($1, $2)
			ON CONFLICT (server_id) DO UPDATE SET revision = greatest(peer_changes_pruned.revision, excluded.revision)`, serverID, below); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM peer_changes WHERE server_id = $1 AND revision <= $2`, serverID, below)
		return err
	})
	if err != nil {
		return fmt.Errorf("prune peer changes of server %d: %w", serverID, err)
	}
	return nil
}
