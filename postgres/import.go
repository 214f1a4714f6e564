package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// ImportPlan is the name of the plan imported subscriptions carry.
const ImportPlan = "import"

// ImportPeer is one client of an old server, its keys sealed, as
// `wgbot import` brings it in.
type ImportPeer struct {
	Ref       string // where the source had it, for the report
	Name      string
	Note      string
	IP        netip.Addr
	IP6       netip.Addr // invalid: none
	Secrets   wgbot.PeerSecrets
	Keepalive int
	Enabled   bool
	ExpiresAt time.Time // zero: the source had none and no default was given
	ClaimHash []byte    // the hash of its claim token

	ID int64 // the new peer's id, once created
}

// ImportReport says what an import created (or, in a dry run, would
// create), what it found already imported, and what stops it.
type ImportReport struct {
	Created   []ImportPeer
	Unchanged []ImportPeer // already there: matched by public key
	Problems  []string     // any one refuses the whole import
	Change    wgbot.Change // the revision an applied import committed
}

// ErrImportRefused: the import has problems and changed nothing.
var ErrImportRefused = errors.New("import refused")

// Import brings peers into server serverID in one transaction, under the
// allocator's lock: peers whose public key is already known change nothing
// (so a second run does nothing); a new peer outside the server's subnet,
// on its own address, or on an address a live peer (or another imported
// one) holds refuses the whole import. Each new peer gets a subscription
// of its own with no owner until its claim link is opened, and its
// expiry; a disabled client comes in disabled, an expired one expired.
// The allocator's high-water mark moves past the imported addresses and
// the hosts it steps over go to the free list, so the next new device
// gets a free address. With apply false nothing is written.
func (s *Store) Import(ctx context.Context, serverID int64, source string, peers []ImportPeer, apply bool, now time.Time) (ImportReport, error) {
	var rep ImportReport
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		rep = ImportReport{}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, s.lockID, int32(serverID)); err != nil {
			return err
		}
		var subnet, subnet6 netip.Prefix
		var has6 bool
		var address, next netip.Addr
		err := tx.QueryRow(ctx, `SELECT subnet, COALESCE(subnet6, '::/128'), subnet6 IS NOT NULL, address, next_ip
			FROM servers WHERE id = $1 FOR UPDATE`, serverID).Scan(&subnet, &subnet6, &has6, &address, &next)
		if err != nil {
			return fmt.Errorf("server %d: %w", serverID, err)
		}
		fresh, err := s.importKnown(ctx, tx, serverID, peers, &rep)
		if err != nil {
			return err
		}
		if err := s.importProblems(ctx, tx, serverID, fresh, subnet, subnet6, has6, address, &rep); err != nil {
			return err
		}
		rep.Created = fresh
		if len(rep.Problems) > 0 {
			return ErrImportRefused
		}
		if !apply || len(fresh) == 0 {
			return nil
		}
		for i := range rep.Created {
			if err := importOne(ctx, tx, serverID, source, &rep.Created[i], now); err != nil {
				return fmt.Errorf("%s: %w", rep.Created[i].Ref, err)
			}
		}
		if err := importAllocator(ctx, tx, serverID, address, next, fresh); err != nil {
			return err
		}
		rep.Change, err = bumpRevision(ctx, tx, serverID)
		return err
	})
	if errors.Is(err, ErrImportRefused) {
		return rep, err
	}
	if err != nil {
		return rep, fmt.Errorf("import into server %d: %w", serverID, err)
	}
	return rep, nil
}

// importKnown moves the peers whose public key is already a peer of this
// server into rep.Unchanged, reports those of another server, and returns
// the rest.
func (s *Store) importKnown(ctx context.Context, tx pgx.Tx, serverID int64, peers []ImportPeer, rep *ImportReport) ([]ImportPeer, error) {
	keys := make([]string, len(peers))
	for i, p := range peers {
		keys[i] = p.Secrets.PublicKey
	}
	rows, err := tx.Query(ctx, `SELECT public_key, server_id, id FROM peers WHERE public_key = ANY($1)`, keys)
	if err != nil {
		return nil, err
	}
	type known struct{ server, id int64 }
	have := map[string]known{}
	for rows.Next() {
		var k string
		var kn known
		if err := rows.Scan(&k, &kn.server, &kn.id); err != nil {
			return nil, err
		}
		have[k] = kn
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var fresh []ImportPeer
	seen := map[string]string{}
	for _, p := range peers {
		if other, dup := seen[p.Secrets.PublicKey]; dup {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s %q: same public key as %s", p.Ref, p.Name, other))
			continue
		}
		seen[p.Secrets.PublicKey] = p.Ref
		kn, ok := have[p.Secrets.PublicKey]
		switch {
		case !ok:
			fresh = append(fresh, p)
		case kn.server != serverID:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s %q: its public key is peer %d's, on another server", p.Ref, p.Name, kn.id))
		default:
			p.ID = kn.id
			rep.Unchanged = append(rep.Unchanged, p)
		}
	}
	return fresh, nil
}

// importProblems lists why the new peers cannot come in: addresses outside
// the server's prefixes, its own address, the network or broadcast
// address, addresses two imported peers share, addresses live peers hold,
// and peers without an expiry.
func (s *Store) importProblems(ctx context.Context, tx pgx.Tx, serverID int64, fresh []ImportPeer,
	subnet, subnet6 netip.Prefix, has6 bool, address netip.Addr, rep *ImportReport) error {
	var ips []netip.Addr
	taken := map[netip.Addr]string{}
	for _, p := range fresh {
		what := fmt.Sprintf("%s %q", p.Ref, p.Name)
		switch {
		case !subnet.Contains(p.IP):
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s is outside the server's subnet %s", what, p.IP, subnet))
		case p.IP == address:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s is the server's own address", what, p.IP))
		case p.IP == subnet.Masked().Addr() || p.IP == lastAddr(subnet):
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s is not a host address of %s", what, p.IP, subnet))
		}
		switch {
		case !p.IP6.IsValid():
		case !has6 || !subnet6.Contains(p.IP6):
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s is outside the server's IPv6 prefix", what, p.IP6))
		case subnet.Contains(p.IP) && p.IP6 != mapToPrefix(p.IP, subnet, subnet6):
			// The allocator gives a new device the IPv6 address with its
			// IPv4 host number: one that does not follow that rule could
			// be handed out again with another device's IPv4 address.
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s does not carry the host number of %s (wgbot would give %s)",
				what, p.IP6, p.IP, mapToPrefix(p.IP, subnet, subnet6)))
		}
		for _, a := range []netip.Addr{p.IP, p.IP6} {
			if !a.IsValid() {
				continue
			}
			if other, dup := taken[a]; dup {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s is also %s's", what, a, other))
			}
			taken[a] = what
			ips = append(ips, a)
		}
		if p.ExpiresAt.IsZero() {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: no expiry: give --days N or --no-expiry", what))
		}
	}
	if len(ips) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT p.id, p.name, p.ip, p.ip6 FROM peers p
		WHERE p.server_id = $1 AND p.status <> 'revoked' AND (p.ip = ANY($2) OR p.ip6 = ANY($2)) ORDER BY p.id`, serverID, ips)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var name string
		var ip netip.Addr
		var ip6 *netip.Addr
		if err := rows.Scan(&id, &name, &ip, &ip6); err != nil {
			return err
		}
		for _, a := range []netip.Addr{ip, deref(ip6)} {
			if who, ok := taken[a]; ok {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s is held by peer %d %q", who, a, id, name))
			}
		}
	}
	return rows.Err()
}

func deref(a *netip.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	return *a
}

// importOne writes one new peer: its own subscription without an owner,
// the peer (delivered: its client has its config already, or wgbot never
// had it) and its claim.
func importOne(ctx context.Context, tx pgx.Tx, serverID int64, source string, p *ImportPeer, now time.Time) error {
	subStatus, peerStatus := wgbot.SubscriptionActive, wgbot.PeerActive
	if !p.ExpiresAt.After(now) {
		subStatus = wgbot.SubscriptionExpired
	}
	if !p.Enabled || subStatus != wgbot.SubscriptionActive {
		peerStatus = wgbot.PeerDisabled
	}
	var subID int64
	if err := tx.QueryRow(ctx, `INSERT INTO subscriptions (user_id, plan, status, device_limit, starts_at, expires_at)
		VALUES (NULL, $1, $2, 1, $3, $4) RETURNING id`, ImportPlan, subStatus, now, p.ExpiresAt).Scan(&subID); err != nil {
		return err
	}
	var ip6 *netip.Addr
	if p.IP6.IsValid() {
		ip6 = &p.IP6
	}
	err := tx.QueryRow(ctx, `INSERT INTO peers (subscription_id, server_id, name, ip, ip6, public_key, private_key_enc, preshared_key_enc,
			key_id, status, disabled_at, delivered_at, keepalive, imported_from, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $10 = 'disabled' THEN $11::timestamptz END, $11, $12, $13, $14)
		RETURNING id`,
		subID, serverID, p.Name, p.IP, ip6, p.Secrets.PublicKey, nonNil(p.Secrets.PrivateKeySealed), nonNil(p.Secrets.PresharedSealed),
		p.Secrets.KeyID, peerStatus, now, p.Keepalive, source, p.Note).Scan(&p.ID)
	if err != nil {
		return err
	}
	if len(p.ClaimHash) > 0 {
		_, err = tx.Exec(ctx, `INSERT INTO peer_claims (token_hash, peer_id, subscription_id) VALUES ($1, $2, $3)`, p.ClaimHash, p.ID, subID)
	}
	return err
}

// nonNil: an absent key is stored as empty bytes, never NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// importAllocator keeps the allocator's promise that every host below the
// high-water mark is in use or in the free list: the imported addresses
// leave the free list, the mark moves past the highest of them, and the
// hosts it steps over that nothing holds join the free list.
func importAllocator(ctx context.Context, tx pgx.Tx, serverID int64, address, next netip.Addr, fresh []ImportPeer) error {
	ips := make([]netip.Addr, len(fresh))
	for i, p := range fresh {
		ips[i] = p.IP
	}
	if _, err := tx.Exec(ctx, `DELETE FROM free_addresses WHERE server_id = $1 AND ip = ANY($2)`, serverID, ips); err != nil {
		return err
	}
	top := slices.MaxFunc(ips, netip.Addr.Compare)
	if top.Less(next) {
		return nil
	}
	newNext := top.Next() // at most the broadcast address, where the allocator stops
	rows, err := tx.Query(ctx, `SELECT ip FROM peers WHERE server_id = $1 AND status <> 'revoked' AND ip >= $2
		UNION SELECT ip FROM reserved_addresses WHERE server_id = $1 AND ip >= $2`, serverID, next)
	if err != nil {
		return err
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[netip.Addr])
	if err != nil {
		return err
	}
	used := make(map[netip.Addr]bool, len(list))
	for _, a := range list {
		used[a] = true
	}
	var gaps []netip.Addr
	for a := next; a.Less(newNext); a = a.Next() {
		if a != address && !used[a] {
			gaps = append(gaps, a)
		}
	}
	if len(gaps) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO free_addresses (server_id, ip) SELECT $1, unnest($2::inet[]) ON CONFLICT DO NOTHING`,
			serverID, gaps); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `UPDATE servers SET next_ip = $2 WHERE id = $1`, serverID, newNext)
	return err
}

// Claim gives the imported device whose claim token hashes to hash, and
// its subscription, to the user. The claim row is locked first, so of
// several users opening one link at once exactly one gets it; the others
// get wgbot.ErrClaimUsed (the owner opening it again gets the device
// again). A user who has a live subscription already keeps one: the
// device moves into it, which takes one more device and lasts until the
// later of the two expiries. Otherwise the imported subscription becomes
// the user's.
func (s *Store) Claim(ctx context.Context, userID int64, hash []byte, now time.Time) (SealedPeer, wgbot.Subscription, error) {
	var p SealedPeer
	var sub wgbot.Subscription
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var peerID, subID int64
		var owner *int64
		err := tx.QueryRow(ctx, `SELECT peer_id, subscription_id, claimed_by FROM peer_claims WHERE token_hash = $1 FOR UPDATE`, hash).
			Scan(&peerID, &subID, &owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return wgbot.ErrClaimUnknown
		}
		if err != nil {
			return err
		}
		if owner != nil && *owner != userID {
			return wgbot.ErrClaimUsed
		}
		if owner == nil {
			if err := claimPeer(ctx, tx, userID, peerID, subID, now); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT `+peerColumns+` FROM peers p WHERE p.id = $1`, peerID)
		if err != nil {
			return err
		}
		if p, err = pgx.CollectExactlyOneRow(rows, scanSealedPeer); err != nil {
			return err
		}
		sub, err = scanSubscription(tx.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = $1`, p.SubscriptionID))
		return err
	})
	if err != nil {
		return p, sub, fmt.Errorf("claim an imported device for user %d: %w", userID, err)
	}
	return p, sub, nil
}

func claimPeer(ctx context.Context, tx pgx.Tx, userID, peerID, subID int64, now time.Time) error {
	// The user's row is locked (the device's number) before the live
	// subscription is read, so two claims of one user take turns and the
	// second sees the first's subscription.
	var number int
	if err := tx.QueryRow(ctx, `UPDATE users SET devices_named = devices_named + 1 WHERE id = $1 RETURNING devices_named`, userID).
		Scan(&number); err != nil {
		return err
	}
	var live int64
	err := tx.QueryRow(ctx, `SELECT id FROM subscriptions WHERE user_id = $1 AND status = 'active' FOR UPDATE`, userID).Scan(&live)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var status string
	if err := tx.QueryRow(ctx, `SELECT status FROM subscriptions WHERE id = $1 FOR UPDATE`, subID).Scan(&status); err != nil {
		return err
	}
	target := subID
	if live != 0 && status == wgbot.SubscriptionActive {
		// One live subscription per user: the device joins the user's,
		// and the imported one ends (revoked first: the UNIQUE guard on
		// live subscriptions checks every statement).
		target = live
		if _, err := tx.Exec(ctx, `UPDATE subscriptions SET status = 'revoked', user_id = $2, updated_at = $3 WHERE id = $1`, subID, userID, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE subscriptions l SET device_limit = l.device_limit + i.device_limit,
				expires_at = greatest(l.expires_at, i.expires_at), updated_at = $3
			FROM subscriptions i WHERE l.id = $1 AND i.id = $2`, live, subID, now); err != nil {
			return err
		}
	} else if _, err := tx.Exec(ctx, `UPDATE subscriptions SET user_id = $2, updated_at = $3 WHERE id = $1`, subID, userID, now); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE peers SET subscription_id = $2, number = $3 WHERE id = $1`, peerID, target, number); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE peer_claims SET claimed_by = $2, claimed_at = $3 WHERE peer_id = $1`, peerID, userID, now)
	return err
}

// KnownKeys says which of keys are the public keys of this server's
// peers that are not revoked: a hand-made wg0.conf section with such a key
// was imported, and the reconciler adopts it (an imported peer that is
// disabled leaves the device with it).
func (s *Store) KnownKeys(ctx context.Context, serverID int64, keys []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT public_key FROM peers WHERE server_id = $1 AND status <> 'revoked' AND public_key = ANY($2)`,
		serverID, keys)
	if err != nil {
		return nil, fmt.Errorf("look up hand-made peers' keys: %w", err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look up hand-made peers' keys: %w", err)
	}
	known := make(map[string]bool, len(list))
	for _, k := range list {
		known[k] = true
	}
	return known, nil
}
