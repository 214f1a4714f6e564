package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// ServerActivePeers is the SQL for the active peers of the server row
// aliased sv, read from server_load (migrations 00012 and 00023: kept by
// a trigger at commit on every write to peers) instead of counting them,
// so `servers list`, the panel, the admin stats and /metrics cost the
// same at 100 peers and at 100,000. Its other count, held addresses
// (active and disabled peers), is what the capacity limits.
const ServerActivePeers = `coalesce((SELECT l.peers_active FROM server_load l WHERE l.server_id = sv.id), 0)`

// Revision is the server's current revision: waiting for it means waiting
// for everything committed so far.
func (s *Store) Revision(ctx context.Context, serverID int64) (wgbot.Change, error) {
	ch := wgbot.Change{ServerID: serverID}
	err := s.pool.QueryRow(ctx, `SELECT revision FROM servers WHERE id = $1`, serverID).Scan(&ch.Revision)
	return ch, err
}

// ServerNames lists the servers' names, to tell an operator who mistyped
// one what exists.
func (s *Store) ServerNames(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name FROM servers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// NotifyServer asks every reconciler listening for the server to reconcile
// again, as a committed change does, without changing anything. The
// operator CLI sends it after its own reconcile: had that reconcile read
// an older snapshot than a concurrent `wgbot serve` had just applied, the
// serve process puts the newer state back at once instead of at its next
// periodic resync.
func (s *Store) NotifyServer(ctx context.Context, serverID, revision int64) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, fmt.Sprintf("%d:%d", serverID, revision))
	if err != nil {
		return fmt.Errorf("notify server %d: %w", serverID, err)
	}
	return nil
}

// EnsureServer creates or updates the server row named srv.Name from the
// settings. Changing the subnet of a server that has peers is refused: the
// issued configs would silently stop working.
func (s *Store) EnsureServer(ctx context.Context, srv wgbot.Server) (wgbot.Server, error) {
	first := srv.Subnet.Addr().Next()
	var subnet6 *netip.Prefix
	if srv.Subnet6.IsValid() {
		subnet6 = &srv.Subnet6
	}
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		// Insert first and lock after: a SELECT … FOR UPDATE finds nothing
		// to lock on a fresh database, so two processes starting at once
		// would both insert and one would fail on the UNIQUE name.
		inserted, err := tx.Exec(ctx, `INSERT INTO servers (name, interface, endpoint, subnet, subnet6, address, public_key, dns, mtu, next_ip)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
			srv.Name, srv.Interface, srv.Endpoint, srv.Subnet, subnet6, srv.Address, srv.PublicKey,
			strings.Join(srv.DNS, ", "), srv.MTU, first)
		if err != nil {
			return err
		}
		// Any conflict does nothing: a concurrent insert of the same row
		// also clashes with its own subnet's exclusion constraint.
		var existing netip.Prefix
		err = tx.QueryRow(ctx, `SELECT id, subnet FROM servers WHERE name = $1 FOR UPDATE`, srv.Name).Scan(&srv.ID, &existing)
		if errors.Is(err, pgx.ErrNoRows) {
			return wgbot.Errorf(wgbot.EConflict, "subnet_overlap", "server %s: its subnet %s overlaps another server's", srv.Name, srv.Subnet)
		}
		if err != nil {
			return err
		}
		if inserted.RowsAffected() == 1 {
			return nil
		}
		if existing != srv.Subnet {
			var peers int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers WHERE server_id = $1 AND status <> 'revoked'`, srv.ID).Scan(&peers); err != nil {
				return err
			}
			if peers > 0 {
				return wgbot.Errorf(wgbot.EInvalid, "subnet_change",
					"server %s has %d peers in %s; refusing to move it to %s (issued configs would break)", srv.Name, peers, existing, srv.Subnet)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM free_addresses WHERE server_id = $1`, srv.ID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE servers SET interface = $2, endpoint = $3, subnet = $4::cidr, subnet6 = $5, address = $6,
			public_key = $7, dns = $8, mtu = $9, updated_at = now(),
			next_ip = CASE WHEN subnet = $4::cidr THEN next_ip ELSE $10 END
			WHERE id = $1`,
			srv.ID, srv.Interface, srv.Endpoint, srv.Subnet, subnet6, srv.Address, srv.PublicKey,
			strings.Join(srv.DNS, ", "), srv.MTU, first)
		return err
	})
	if err != nil {
		return wgbot.Server{}, fmt.Errorf("ensure server %s: %w", srv.Name, err)
	}
	return srv, nil
}

// Server reads one server row.
func (s *Store) Server(ctx context.Context, id int64) (wgbot.Server, error) {
	var srv wgbot.Server
	var subnet6 *netip.Prefix
	var dns string
	err := s.pool.QueryRow(ctx, `SELECT id, name, interface, endpoint, subnet, subnet6, address, public_key, dns, mtu
		FROM servers WHERE id = $1`, id).
		Scan(&srv.ID, &srv.Name, &srv.Interface, &srv.Endpoint, &srv.Subnet, &subnet6, &srv.Address, &srv.PublicKey, &dns, &srv.MTU)
	if err != nil {
		return srv, fmt.Errorf("read server %d: %w", id, err)
	}
	if subnet6 != nil {
		srv.Subnet6 = *subnet6
	}
	for _, d := range strings.Split(dns, ",") {
		if d = strings.TrimSpace(d); d != "" {
			srv.DNS = append(srv.DNS, d)
		}
	}
	return srv, nil
}

// bumpRevisions is bumpRevision for each of servers, in order.
func bumpRevisions(ctx context.Context, tx pgx.Tx, servers []int64) ([]wgbot.Change, error) {
	changes := make([]wgbot.Change, 0, len(servers))
	for _, id := range servers {
		ch, err := bumpRevision(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// bumpRevision records that the server's desired peers changed and tells
// every listening reconciler, at commit, in one round trip.
func bumpRevision(ctx context.Context, tx pgx.Tx, serverID int64) (wgbot.Change, error) {
	ch := wgbot.Change{ServerID: serverID}
	err := tx.QueryRow(ctx, `WITH srv AS (UPDATE servers SET revision = revision + 1 WHERE id = $1 RETURNING revision)
		SELECT revision, pg_notify($2, $1::text || ':' || revision) IS NULL FROM srv`, serverID, NotifyChannel).
		Scan(&ch.Revision, new(bool))
	return ch, err
}
