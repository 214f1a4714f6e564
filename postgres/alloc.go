package postgres

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// allocatePeer gives the subscription a new peer with the lowest free
// address. The advisory lock is per (DB_IP_ALLOC_LOCK_ID, server) and, being
// transaction-scoped, is released by commit or rollback on every path:
// unlike a session lock (which the Python bot wgbot replaces took and
// released in different functions) it cannot be left behind on a pooled
// connection. Cost: one index probe of free_addresses and one row update,
// whatever the number of peers.
func (s *Store) allocatePeer(ctx context.Context, tx pgx.Tx, subID, serverID int64, peer NewPeer) (wgbot.Peer, wgbot.Change, error) {
	p := wgbot.Peer{SubscriptionID: subID, ServerID: serverID, Name: peer.Name, PublicKey: peer.Secrets.PublicKey, Status: wgbot.PeerActive}
	// The device takes the next number of its user's own counter, so no
	// name or config file name repeats one the user had, whatever was
	// removed. It is taken before the allocation lock, which must never
	// wait for a user's row.
	// The server's node key comes along: the preshared key is sealed to it
	// before the lock too. Should the key change before the insert, the
	// insert's trigger marks the server for serve's sealing job.
	var nodeKey string
	if err := tx.QueryRow(ctx, `UPDATE users SET devices_named = devices_named + 1
		WHERE id = (SELECT user_id FROM subscriptions WHERE id = $1)
		RETURNING devices_named, (SELECT node_key FROM servers WHERE id = $2)`, subID, serverID).Scan(&p.Number, &nodeKey); err != nil {
		return p, wgbot.Change{}, fmt.Errorf("number a new device of subscription %d: %w", subID, err)
	}
	var nodeSealed []byte
	var sealedTo *string
	if nodeKey != "" && peer.SealForNode != nil {
		var err error
		if nodeSealed, err = peer.SealForNode(nodeKey); err != nil {
			return p, wgbot.Change{}, fmt.Errorf("seal the preshared key to server %d's node: %w", serverID, err)
		}
		sealedTo = &nodeKey
	}
	if p.Name == "" {
		p.Name = fmt.Sprintf("device-%d", p.Number)
	}
	// Round trips made while the lock is held serialize every issuance on
	// a server, so there are two: the lock, the server row and the lowest
	// freed address travel in one batch; the insert, the high-water mark,
	// the revision and the notification in one statement.
	var batch pgx.Batch
	batch.Queue(`SELECT pg_advisory_xact_lock($1, $2)`, s.lockID, int32(serverID))
	// A freed address that a live peer or a hand-made peer holds again is
	// never handed out: the free list is a hint, the peers are the truth.
	batch.Queue(`WITH freed AS (
			DELETE FROM free_addresses WHERE server_id = $1 AND ip = (
				SELECT f.ip FROM free_addresses f WHERE f.server_id = $1 AND f.available_at <= now()
				  AND NOT EXISTS (SELECT 1 FROM peers p WHERE p.server_id = $1 AND p.ip = f.ip AND p.status <> 'revoked')
				  AND NOT EXISTS (SELECT 1 FROM reserved_addresses r WHERE r.server_id = $1 AND r.ip = f.ip)
				ORDER BY f.ip LIMIT 1)
			RETURNING ip)
		SELECT subnet, COALESCE(subnet6, '::/128'), subnet6 IS NOT NULL, address, next_ip,
			ARRAY(SELECT ip FROM reserved_addresses WHERE server_id = $1), (SELECT ip FROM freed),
			capacity IS NOT NULL AND (SELECT peers_held FROM server_load WHERE server_id = $1) >= capacity
		FROM servers WHERE id = $1`, serverID)
	results := tx.SendBatch(ctx, &batch)
	var subnet, subnet6 netip.Prefix
	var address, next netip.Addr
	var has6 bool
	var reserved []netip.Addr
	var freed *netip.Addr
	var full *bool
	_, err := results.Exec()
	if err == nil {
		err = results.QueryRow().Scan(&subnet, &subnet6, &has6, &address, &next, &reserved, &freed, &full)
	}
	if cerr := results.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return p, wgbot.Change{}, fmt.Errorf("allocate on server %d: %w", serverID, err)
	}
	// Capacity is checked under the lock, so picks made at once never
	// overfill a server; a payment's or an operator's device may.
	if full != nil && *full && !peer.Overfill {
		return p, wgbot.Change{}, fmt.Errorf("server %d: %w", serverID, wgbot.ErrServerFull)
	}
	advance := freed == nil
	if freed != nil {
		p.IP = *freed
	} else {
		// Nothing freed: take the high-water mark, stepping over the
		// server's own address and hand-made peers' addresses (a short
		// list); the broadcast address is never a host.
		for next == address || slices.Contains(reserved, next) {
			next = next.Next()
		}
		if !subnet.Contains(next) || next == lastAddr(subnet) {
			return p, wgbot.Change{}, fmt.Errorf("server %d, subnet %s: %w", serverID, subnet, wgbot.ErrNoFreeAddress)
		}
		p.IP = next
	}
	var ip6 *netip.Addr
	if has6 {
		a := mapToPrefix(p.IP, subnet, subnet6)
		p.IP6, ip6 = a, &a
	}
	ch := wgbot.Change{ServerID: serverID}
	err = tx.QueryRow(ctx, `WITH srv AS (
			UPDATE servers SET revision = revision + 1, next_ip = CASE WHEN $11 THEN $12::inet ELSE next_ip END
			WHERE id = $2 RETURNING revision),
		peer AS (
			INSERT INTO peers (subscription_id, server_id, name, ip, ip6, public_key, private_key_enc, preshared_key_enc, key_id, status, number,
				psk_node_sealed, psk_node_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $13, $14, $15) RETURNING id, created_at)
		SELECT peer.id, peer.created_at, srv.revision, pg_notify($10, $2::text || ':' || srv.revision) IS NULL
		FROM peer, srv`,
		subID, serverID, p.Name, p.IP, ip6, peer.Secrets.PublicKey, peer.Secrets.PrivateKeySealed, peer.Secrets.PresharedSealed,
		peer.Secrets.KeyID, NotifyChannel, advance, p.IP.Next(), p.Number, nodeSealed, sealedTo).
		Scan(&p.ID, &p.CreatedAt, &ch.Revision, new(bool))
	return p, ch, err
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		a[i/8] |= 1 << (7 - i%8)
	}
	out := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		return out.Unmap()
	}
	return out
}

// mapToPrefix gives an IPv4 host the same host number inside the IPv6
// prefix, so dual stack needs no second allocator: 10.8.0.7 → fd00::7.
func mapToPrefix(ip netip.Addr, subnet, subnet6 netip.Prefix) netip.Addr {
	host := ip.As4()
	net4 := subnet.Masked().Addr().As4()
	offset := uint32(host[0]^net4[0])<<24 | uint32(host[1]^net4[1])<<16 | uint32(host[2]^net4[2])<<8 | uint32(host[3]^net4[3])
	a := subnet6.Masked().Addr().As16()
	for i := 15; i >= 12; i-- {
		a[i] |= byte(offset)
		offset >>= 8
	}
	return netip.AddrFrom16(a)
}

// ReserveAddresses replaces the server's reserved set with addrs (the
// hand-made peers of wg0.conf) and reports any active wgbot peer that
// already holds one of them, so the operator can resolve it.
func (s *Store) ReserveAddresses(ctx context.Context, serverID int64, addrs []netip.Addr) (clashes []netip.Addr, err error) {
	if addrs == nil {
		addrs = []netip.Addr{} // nil would be SQL NULL, and NOT ip = ANY(NULL) deletes nothing
	}
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		// A released reservation below the high-water mark was stepped
		// over by the allocator: it goes to the free list, unless a peer
		// holds it (a hand-made peer that was imported).
		_, err := tx.Exec(ctx, `WITH released AS (
				DELETE FROM reserved_addresses WHERE server_id = $1 AND NOT ip = ANY($2) RETURNING ip)
			INSERT INTO free_addresses (server_id, ip)
			SELECT $1, r.ip FROM released r, servers s WHERE s.id = $1 AND r.ip < s.next_ip
			  AND NOT EXISTS (SELECT 1 FROM peers p WHERE p.server_id = $1 AND p.ip = r.ip AND p.status <> 'revoked')
			ON CONFLICT DO NOTHING`, serverID, addrs)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reserved_addresses (server_id, ip) SELECT $1, unnest($2::inet[]) ON CONFLICT DO NOTHING`, serverID, addrs); err != nil {
			return err
		}
		// A reserved address must not sit in the free list either.
		if _, err := tx.Exec(ctx, `DELETE FROM free_addresses WHERE server_id = $1 AND ip = ANY($2)`, serverID, addrs); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT ip FROM peers WHERE server_id = $1 AND status <> 'revoked' AND ip = ANY($2)`, serverID, addrs)
		if err != nil {
			return err
		}
		clashes, err = pgx.CollectRows(rows, pgx.RowTo[netip.Addr])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reserve hand-made addresses of server %d: %w", serverID, err)
	}
	return clashes, nil
}

// freeAddresses puts the (server_id, ip) rows into the free list and
// returns the distinct servers touched.
func (s *Store) freeAddresses(ctx context.Context, tx pgx.Tx, rows pgx.Rows) ([]int64, error) {
	type freed struct {
		server int64
		ip     netip.Addr
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (freed, error) {
		var f freed
		return f, r.Scan(&f.server, &f.ip)
	})
	if err != nil {
		return nil, err
	}
	var servers []int64
	seen := map[int64]bool{}
	for _, f := range list {
		_, err := tx.Exec(ctx, `INSERT INTO free_addresses (server_id, ip, available_at) VALUES ($1, $2, now() + $3::interval)
			ON CONFLICT (server_id, ip) DO UPDATE SET available_at = EXCLUDED.available_at`, f.server, f.ip, s.quarantine)
		if err != nil {
			return nil, err
		}
		if !seen[f.server] {
			seen[f.server] = true
			servers = append(servers, f.server)
		}
	}
	return servers, nil
}
