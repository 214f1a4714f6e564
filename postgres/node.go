package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"wgbot"
)

// AppliedChannel carries "server N applied revision R" from the node that
// runs server N to every serve process waiting for a change to be applied.
const AppliedChannel = "wgbot_applied"

// The states of a server: a draining server takes no new peers, and its
// existing peers keep working.
const (
	ServerActive   = "active"
	ServerDraining = "draining"
)

// NodeReport is what a node reports about its host.
type NodeReport struct {
	// Boot names the node process (random, made at its start): a report
	// from a new one ends an outage (see recordOutage).
	Boot       string
	Revision   int64 // the last revision it applied
	Version    string
	Peers      int // on the device (or in wg0.conf in file mode)
	Handshakes int // peers with a handshake in the last 3 minutes
	ListenPort int
}

// NodeStatus is a node's last report and when it arrived.
type NodeStatus struct {
	NodeReport
	SeenAt time.Time
}

// recordOutage is the tail of both statements that refresh a node's
// seen_at: prev is the row as the statement's snapshot has it, and n as
// the statement left it. A node process other than the one that wrote
// prev (another boot) came back: the gap between prev's last heartbeat
// and now is an outage. Statements of the new process racing each other
// may all see the old row; they all name the same start, and the UNIQUE
// key keeps one. A node that kept running while the database was away
// keeps its boot, and its gap is none: its device kept serving.
const recordOutage = `INSERT INTO server_outages (server_id, started_at, ended_at)
	SELECT $1, prev.seen_at, n.seen_at FROM prev, n
	WHERE $2::text <> '' AND prev.boot <> $2::text AND n.seen_at > prev.seen_at
	ON CONFLICT (server_id, started_at) DO NOTHING`

// ReportNode records a node's heartbeat, and an outage when it is the
// first of a new node process. The applied revision never moves back, so
// a late report cannot undo a newer one.
func (s *Store) ReportNode(ctx context.Context, serverID int64, r NodeReport) error {
	_, err := s.pool.Exec(ctx, `WITH prev AS (SELECT seen_at, boot FROM node_status WHERE server_id = $1),
		n AS (INSERT INTO node_status AS n (server_id, boot, revision, version, peers, handshakes, listen_port, seen_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, now())
			ON CONFLICT (server_id) DO UPDATE SET boot = EXCLUDED.boot, revision = greatest(n.revision, EXCLUDED.revision), version = EXCLUDED.version,
				peers = EXCLUDED.peers, handshakes = EXCLUDED.handshakes, listen_port = EXCLUDED.listen_port, seen_at = now()
			RETURNING seen_at)
		`+recordOutage,
		serverID, r.Boot, r.Revision, r.Version, r.Peers, r.Handshakes, r.ListenPort)
	if err != nil {
		return fmt.Errorf("report node of server %d: %w", serverID, err)
	}
	return nil
}

// NodeApplied records that the server's node (the process boot) applied
// revision rev and tells the processes waiting for it, in one round trip.
// It refreshes the heartbeat too, so it records an outage as ReportNode
// does: whichever of the two a restarted node sends first ends the gap.
func (s *Store) NodeApplied(ctx context.Context, serverID int64, boot string, rev int64) error {
	_, err := s.pool.Exec(ctx, `WITH prev AS (SELECT seen_at, boot FROM node_status WHERE server_id = $1),
		n AS (
			INSERT INTO node_status AS n (server_id, boot, revision) VALUES ($1, $2, $3)
			ON CONFLICT (server_id) DO UPDATE SET boot = EXCLUDED.boot, revision = greatest(n.revision, EXCLUDED.revision), seen_at = now()
			RETURNING revision, seen_at),
		gap AS (`+recordOutage+`)
		SELECT pg_notify($4, $1::text || ':' || revision) FROM n`, serverID, boot, rev, AppliedChannel)
	if err != nil {
		return fmt.Errorf("record revision %d applied on server %d: %w", rev, serverID, err)
	}
	return nil
}

// ParseApplied reads an AppliedChannel payload.
func ParseApplied(payload string) (serverID, rev int64, ok bool) {
	a, b, found := strings.Cut(payload, ":")
	serverID, err1 := strconv.ParseInt(a, 10, 64)
	rev, err2 := strconv.ParseInt(b, 10, 64)
	return serverID, rev, found && err1 == nil && err2 == nil
}

// ServerByName reads the server row an operator or a node names; an
// unknown name is a not-found error listing the servers that exist.
func (s *Store) ServerByName(ctx context.Context, name string) (wgbot.Server, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT id FROM servers WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		names, _ := s.ServerNames(ctx)
		return wgbot.Server{}, wgbot.Errorf(wgbot.ENotFound, "server_not_found", "no server %q (servers: %s)", name, strings.Join(names, ", "))
	}
	if err != nil {
		return wgbot.Server{}, fmt.Errorf("find server %s: %w", name, err)
	}
	return s.Server(ctx, id)
}

// RegisterNodeKey puts the public key of the node's WireGuard device on
// its server row, which `servers add` leaves empty. A different key on a
// server that has peers is refused: their configs would stop working.
func (s *Store) RegisterNodeKey(ctx context.Context, serverID int64, publicKey string) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var current string
		var peers int
		if err := tx.QueryRow(ctx, `SELECT public_key, (SELECT count(*) FROM peers WHERE server_id = $1 AND status <> 'revoked')
			FROM servers WHERE id = $1 FOR UPDATE`, serverID).Scan(&current, &peers); err != nil {
			return fmt.Errorf("register the node key of server %d: %w", serverID, err)
		}
		if current == publicKey {
			return nil
		}
		if current != "" && peers > 0 {
			return wgbot.Errorf(wgbot.EConflict, "server_key_change",
				"the device's public key %s is not server %d's %s, which its %d peers use: refusing to change it (their configs would stop working)",
				publicKey, serverID, current, peers)
		}
		_, err := tx.Exec(ctx, `UPDATE servers SET public_key = $2, updated_at = now() WHERE id = $1`, serverID, publicKey)
		return err
	})
}

// ServerInfo is a server row as `wgbot servers list` shows it.
type ServerInfo struct {
	wgbot.Server
	Location string
	Capacity int // 0: no limit
	State    string
	Revision int64
	Peers    int // active peers
	Node     *NodeStatus
}

// Servers lists every server with its load and its node's last report.
func (s *Store) Servers(ctx context.Context) ([]ServerInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT sv.id, sv.name, sv.interface, sv.endpoint, sv.subnet, sv.subnet6, sv.address, sv.public_key,
			sv.location, coalesce(sv.capacity, 0), sv.state, sv.revision, `+ServerActivePeers+`,
			n.revision, n.version, n.peers, n.handshakes, n.listen_port, n.seen_at
		FROM servers sv LEFT JOIN node_status n ON n.server_id = sv.id ORDER BY sv.name`)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ServerInfo, error) {
		var si ServerInfo
		var subnet6 *netip.Prefix
		var rev *int64
		var version *string
		var peers, handshakes, port *int
		var seen *time.Time
		err := row.Scan(&si.ID, &si.Name, &si.Interface, &si.Endpoint, &si.Subnet, &subnet6, &si.Address, &si.PublicKey,
			&si.Location, &si.Capacity, &si.State, &si.Revision, &si.Peers, &rev, &version, &peers, &handshakes, &port, &seen)
		if subnet6 != nil {
			si.Subnet6 = *subnet6
		}
		if seen != nil {
			si.Node = &NodeStatus{NodeReport: NodeReport{Revision: *rev, Version: *version, Peers: *peers, Handshakes: *handshakes, ListenPort: *port}, SeenAt: *seen}
		}
		return si, err
	})
}

// NewServer is what `wgbot servers add` creates: a server row a node will
// run; the node registers its device's public key on first start.
type NewServer struct {
	Name, Location, Endpoint string
	Subnet, Subnet6          netip.Prefix
	Capacity                 int // 0: no limit
	DNS                      []string
	MTU                      int
}

// AddServer creates a server. A taken name or a subnet overlapping another
// server's is refused with what clashes.
func (s *Store) AddServer(ctx context.Context, n NewServer) (wgbot.Server, error) {
	var subnet6 *netip.Prefix
	if n.Subnet6.IsValid() {
		subnet6 = &n.Subnet6
	}
	var capacity *int
	if n.Capacity > 0 {
		capacity = &n.Capacity
	}
	addr := n.Subnet.Masked().Addr().Next()
	var id int64
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		trail, err := beginServerAudit(ctx, tx, n.Name)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO servers (name, interface, endpoint, subnet, subnet6, address, public_key, dns, mtu, next_ip, location, capacity)
		VALUES ($1, 'wg0', $2, $3, $4, $5, '', $6, $7, $8, $9, $10) RETURNING id`,
			n.Name, n.Endpoint, n.Subnet.Masked(), subnet6, addr, strings.Join(n.DNS, ", "), n.MTU, addr.Next(), n.Location, capacity).Scan(&id)
		if err != nil {
			return err
		}
		return trail.done(ctx, tx)
	})
	if err != nil {
		return wgbot.Server{}, s.serverConflict(ctx, n.Name, err)
	}
	return s.Server(ctx, id)
}

// serverConflict explains a refused server row: which name or subnet it
// clashed with.
func (s *Store) serverConflict(ctx context.Context, name string, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("add server %s: %w", name, err)
	}
	switch pgErr.ConstraintName {
	case "servers_name_key":
		return wgbot.Errorf(wgbot.EConflict, "server_exists", "a server named %q already exists", name)
	case "servers_subnets_disjoint", "servers_subnets6_disjoint":
		// The detail names the subnets that clash.
		return wgbot.Errorf(wgbot.EConflict, "subnet_overlap", "server %s: its subnet overlaps another server's (%s)", name, pgErr.Detail)
	}
	return fmt.Errorf("add server %s: %w", name, err)
}

// SetServerState drains a server (no new peers) or enables it again.
// An admin's change (wgbot.WithAudit) is recorded when the state changed.
func (s *Store) SetServerState(ctx context.Context, name, state string) error {
	var found bool
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		trail, err := beginServerAudit(ctx, tx, name)
		if err != nil {
			return err
		}
		var was string
		err = tx.QueryRow(ctx, `UPDATE servers n SET state = $2, updated_at = now() FROM servers o
			WHERE n.id = o.id AND n.name = $1 RETURNING o.state`, name, state).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		found = true
		if err != nil || was == state {
			return err
		}
		return trail.done(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("set server %s %s: %w", name, state, err)
	}
	if !found {
		_, err := s.ServerByName(ctx, name)
		return err
	}
	return nil
}

// RemoveServer deletes a server that holds no peers; one that does is
// refused with their count (revoke or move them first).
func (s *Store) RemoveServer(ctx context.Context, name string) error {
	srv, err := s.ServerByName(ctx, name)
	if err != nil {
		return err
	}
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		trail, err := beginServerAudit(ctx, tx, name)
		if err != nil {
			return err
		}
		var peers int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM peers WHERE server_id = $1 AND status <> 'revoked'`, srv.ID).Scan(&peers); err != nil {
			return err
		}
		if peers > 0 {
			return wgbot.Errorf(wgbot.EConflict, "server_has_peers", "server %s still holds %d peers: revoke or move them first", name, peers)
		}
		// Revoked peers go too, unless a payment refers to one: then the
		// row stays as the payment's history.
		for _, q := range []string{`DELETE FROM peers p WHERE p.server_id = $1 AND NOT EXISTS (SELECT 1 FROM payments WHERE peer_id = p.id)`,
			`DELETE FROM free_addresses WHERE server_id = $1`, `DELETE FROM reserved_addresses WHERE server_id = $1`,
			`DELETE FROM peer_changes WHERE server_id = $1`, `DELETE FROM peer_changes_pruned WHERE server_id = $1`,
			`DELETE FROM servers WHERE id = $1`} {
			_, err := tx.Exec(ctx, q, srv.ID)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign key
				return wgbot.Errorf(wgbot.EConflict, "server_has_history",
					"server %s keeps revoked devices that payments refer to: drain it instead (it stays listed and takes no peers)", name)
			}
			if err != nil {
				return fmt.Errorf("remove server %s: %w", name, err)
			}
		}
		return trail.done(ctx, tx)
	})
}

// PickServer is the server a new device of userID goes to when there are
// several: of the active servers that have room and a public key and whose
// node reported within downAfter, in the location of server `in` (0: the
// location the user chose, if any), two taken at random, the one less
// loaded relative to its capacity (ties at random). Picks made at once see
// the same counts; plain "least loaded" would send them all to one server,
// while two random choices spread them and still favour the emptier one.
// wgbot.ErrLocationDown if the location asked for has none,
// wgbot.ErrNoServer if there is none at all.
func (s *Store) PickServer(ctx context.Context, downAfter time.Duration, userID, in int64) (wgbot.Server, error) {
	var id *int64
	var location *string
	err := s.pool.QueryRow(ctx, `WITH wanted AS (
			SELECT coalesce((SELECT location FROM servers WHERE id = $3),
				(SELECT location FROM user_locations WHERE user_id = $2)) AS location),
		two AS (
			SELECT sv.id, coalesce(l.peers_held, 0) AS peers, sv.capacity FROM servers sv
				JOIN node_status n ON n.server_id = sv.id
				LEFT JOIN server_load l ON l.server_id = sv.id
			WHERE sv.state = 'active' AND sv.public_key <> '' AND n.seen_at > now() - $1::interval
				AND (sv.capacity IS NULL OR coalesce(l.peers_held, 0) < sv.capacity)
				AND sv.location = coalesce((SELECT location FROM wanted), sv.location)
			ORDER BY random() LIMIT 2)
		SELECT (SELECT id FROM two ORDER BY (peers + 0.9 * random()) / coalesce(capacity, 1000000) LIMIT 1),
			(SELECT location FROM wanted)`, downAfter, userID, in).Scan(&id, &location)
	if err == nil && id == nil {
		if location != nil {
			return wgbot.Server{}, wgbot.ErrLocationDown
		}
		return wgbot.Server{}, wgbot.ErrNoServer
	}
	if err != nil {
		return wgbot.Server{}, fmt.Errorf("pick a server: %w", err)
	}
	return s.Server(ctx, *id)
}

// NodeStatuses is the last report of every server's node, by server id.
func (s *Store) NodeStatuses(ctx context.Context) (map[int64]NodeStatus, error) {
	rows, err := s.pool.Query(ctx, `SELECT server_id, revision, version, peers, handshakes, listen_port, seen_at FROM node_status`)
	if err != nil {
		return nil, fmt.Errorf("read the nodes' reports: %w", err)
	}
	out := map[int64]NodeStatus{}
	var id int64
	var st NodeStatus
	_, err = pgx.ForEachRow(rows, []any{&id, &st.Revision, &st.Version, &st.Peers, &st.Handshakes, &st.ListenPort, &st.SeenAt}, func() error {
		out[id] = st
		return nil
	})
	return out, err
}
