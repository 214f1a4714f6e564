package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"wgbot"
)

// NotifyChannel is the LISTEN/NOTIFY channel that carries "server N changed
// to revision R" to every wgbot process and host.
const NotifyChannel = "wgbot_peers"

// Store runs wgbot's business steps against PostgreSQL, one transaction each.
type Store struct {
	pool       *pgxpool.Pool
	lockID     int32         // DB_IP_ALLOC_LOCK_ID
	quarantine time.Duration // how long a freed address rests before reuse

	jobs         *river.Client[pgx.Tx] // nil: insert no follow-up jobs
	reminderDays []int
	renewalGrace time.Duration // 0: renewal always restores the same peers
}

// WithRenewalGrace sets how long after expiry a renewal restores the same
// peers and addresses (RENEWAL_GRACE); later, it issues a new device.
func (s *Store) WithRenewalGrace(d time.Duration) *Store {
	s.renewalGrace = d
	return s
}

// NewStore returns a Store. lockID is the first key of the allocator's
// advisory lock; the server id is the second, so servers never contend.
func NewStore(pool *pgxpool.Pool, lockID int32, quarantine time.Duration) *Store {
	return &Store{pool: pool, lockID: lockID, quarantine: quarantine}
}

// NewPeer is what the allocator needs to create a peer besides an address.
type NewPeer struct {
	Name    string
	Secrets wgbot.PeerSecrets
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
		var existing netip.Prefix
		err := tx.QueryRow(ctx, `SELECT id, subnet FROM servers WHERE name = $1 FOR UPDATE`, srv.Name).Scan(&srv.ID, &existing)
		if errors.Is(err, pgx.ErrNoRows) {
			return tx.QueryRow(ctx, `INSERT INTO servers (name, interface, endpoint, subnet, subnet6, address, public_key, dns, mtu, next_ip)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
				srv.Name, srv.Interface, srv.Endpoint, srv.Subnet, subnet6, srv.Address, srv.PublicKey,
				strings.Join(srv.DNS, ", "), srv.MTU, first).Scan(&srv.ID)
		}
		if err != nil {
			return err
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

// RegisterUser creates the user on first contact and refreshes name and
// username afterwards; two /start at once yield one row. The language and
// referrer are kept from the first contact (later ones may not move them).
func (s *Store) RegisterUser(ctx context.Context, u wgbot.User, referrerTelegramID int64) (wgbot.User, bool, error) {
	var created bool
	var referrer *int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO users (telegram_id, username, first_name, language, referrer_id)
		VALUES ($1, $2, $3, $4, (SELECT id FROM users WHERE telegram_id = $5 AND telegram_id <> $1))
		ON CONFLICT (telegram_id) DO UPDATE SET username = EXCLUDED.username, first_name = EXCLUDED.first_name
		RETURNING id, language, referrer_id, blocked_bot, banned, created_at, xmax = 0`,
		u.TelegramID, u.Username, u.FirstName, u.Language, referrerTelegramID).
		Scan(&u.ID, &u.Language, &referrer, &u.BlockedBot, &u.Banned, &u.CreatedAt, &created)
	if err != nil {
		return u, false, fmt.Errorf("register user %d: %w", u.TelegramID, err)
	}
	if referrer != nil {
		u.ReferrerID = *referrer
	}
	return u, created, nil
}

const userColumns = `id, telegram_id, username, first_name, language, COALESCE(referrer_id, 0), blocked_bot, banned, created_at`

func scanUser(row pgx.Row) (wgbot.User, error) {
	var u wgbot.User
	err := row.Scan(&u.ID, &u.TelegramID, &u.Username, &u.FirstName, &u.Language, &u.ReferrerID, &u.BlockedBot, &u.Banned, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, wgbot.ErrUserNotFound
	}
	return u, err
}

// UserByTelegramID finds a user by Telegram id.
func (s *Store) UserByTelegramID(ctx context.Context, telegramID int64) (wgbot.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE telegram_id = $1`, telegramID))
}

// UserByUsername finds a user by @username, case-insensitively.
// Usernames move between accounts on Telegram, so a stale one may match
// two users: then the caller must use the Telegram id.
func (s *Store) UserByUsername(ctx context.Context, username string) (wgbot.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE lower(username) = lower($1) LIMIT 2`, strings.TrimPrefix(username, "@"))
	if err != nil {
		return wgbot.User{}, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wgbot.User, error) { return scanUser(r) })
	switch {
	case err != nil:
		return wgbot.User{}, err
	case len(users) == 0:
		return wgbot.User{}, wgbot.ErrUserNotFound
	case len(users) > 1:
		return wgbot.User{}, wgbot.Errorf(wgbot.EConflict, "ambiguous_username", "several users have been @%s; use the Telegram id", strings.TrimPrefix(username, "@"))
	}
	return users[0], nil
}

// SetLanguage stores the user's chosen language.
func (s *Store) SetLanguage(ctx context.Context, userID int64, lang string) error {
	_, err := s.pool.Exec(ctx, `UPDATE users SET language = $2 WHERE id = $1`, userID, lang)
	return err
}

// IssueTrial creates the user's one trial subscription with one peer.
func (s *Store) IssueTrial(ctx context.Context, userID, serverID int64, plan wgbot.Plan, peer NewPeer, now time.Time) (wgbot.Subscription, wgbot.Peer, wgbot.Change, error) {
	var sub wgbot.Subscription
	var p wgbot.Peer
	var ch wgbot.Change
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var err error
		sub, err = insertSubscription(ctx, tx, userID, plan, true, now)
		if err != nil {
			return err
		}
		p, ch, err = s.allocatePeer(ctx, tx, sub.ID, serverID, peer)
		return err
	})
	if err != nil {
		return sub, p, ch, fmt.Errorf("issue trial for user %d: %w", userID, err)
	}
	return sub, p, ch, nil
}

func insertSubscription(ctx context.Context, tx pgx.Tx, userID int64, plan wgbot.Plan, trial bool, now time.Time) (wgbot.Subscription, error) {
	sub := wgbot.Subscription{UserID: userID, Plan: plan.Name, IsTrial: trial, Status: wgbot.SubscriptionActive,
		DeviceLimit: plan.Devices, StartsAt: now, ExpiresAt: now.AddDate(0, 0, plan.Days)}
	err := tx.QueryRow(ctx, `INSERT INTO subscriptions (user_id, plan, is_trial, status, device_limit, starts_at, expires_at)
		VALUES ($1, $2, $3, 'active', $4, $5, $6) RETURNING id`,
		userID, plan.Name, trial, plan.Devices, now, sub.ExpiresAt).Scan(&sub.ID)
	switch constraintOf(err) {
	case "subscriptions_one_trial":
		return sub, wgbot.ErrTrialUsed
	case "subscriptions_one_active":
		if trial {
			return sub, wgbot.ErrHasAccess
		}
		return sub, errRetry // a concurrent payment created it first: extend it instead
	}
	return sub, err
}

// allocatePeer gives the subscription a new peer with the lowest free
// address. The advisory lock is per (DB_IP_ALLOC_LOCK_ID, server) and, being
// transaction-scoped, is released by commit or rollback on every path:
// unlike the original's session lock it cannot be left behind on a pooled
// connection. Cost: one index probe of free_addresses and one row update,
// whatever the number of peers.
func (s *Store) allocatePeer(ctx context.Context, tx pgx.Tx, subID, serverID int64, peer NewPeer) (wgbot.Peer, wgbot.Change, error) {
	p := wgbot.Peer{SubscriptionID: subID, ServerID: serverID, Name: peer.Name, PublicKey: peer.Secrets.PublicKey, Status: wgbot.PeerActive}
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
			ARRAY(SELECT ip FROM reserved_addresses WHERE server_id = $1), (SELECT ip FROM freed)
		FROM servers WHERE id = $1`, serverID)
	results := tx.SendBatch(ctx, &batch)
	var subnet, subnet6 netip.Prefix
	var address, next netip.Addr
	var has6 bool
	var reserved []netip.Addr
	var freed *netip.Addr
	_, err := results.Exec()
	if err == nil {
		err = results.QueryRow().Scan(&subnet, &subnet6, &has6, &address, &next, &reserved, &freed)
	}
	if cerr := results.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return p, wgbot.Change{}, fmt.Errorf("allocate on server %d: %w", serverID, err)
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
			INSERT INTO peers (subscription_id, server_id, name, ip, ip6, public_key, private_key_enc, preshared_key_enc, key_id, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active') RETURNING id, created_at)
		SELECT peer.id, peer.created_at, srv.revision, pg_notify($10, $2::text || ':' || srv.revision) IS NULL
		FROM peer, srv`,
		subID, serverID, peer.Name, p.IP, ip6, peer.Secrets.PublicKey, peer.Secrets.PrivateKeySealed, peer.Secrets.PresharedSealed,
		peer.Secrets.KeyID, NotifyChannel, advance, p.IP.Next()).
		Scan(&p.ID, &p.CreatedAt, &ch.Revision, new(bool))
	return p, ch, err
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

// errRetry asks retryTx to run the whole transaction again.
var errRetry = errors.New("retry transaction")

// retryTx runs fn in a transaction and runs it again when a concurrent
// transaction won a race that fn cannot resolve inside its own snapshot:
// a UNIQUE guard fired on an address (the last guard behind the allocator),
// or a subscription was created meanwhile. Users never see these.
func (s *Store) retryTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = inTx(ctx, s.pool, fn)
		switch {
		case errors.Is(err, errRetry):
			continue
		case constraintOf(err) == "peers_server_ip":
			// The high-water mark fell behind rows written some other way
			// (a restore, a hand edit): move it past them and try again.
			if _, rerr := s.pool.Exec(ctx, `UPDATE servers s SET next_ip = m.ip + 1
				FROM (SELECT server_id, max(ip) AS ip FROM peers WHERE status <> 'revoked' GROUP BY server_id) m
				WHERE s.id = m.server_id AND s.next_ip <= m.ip AND m.ip + 1 << s.subnet`); rerr != nil {
				return rerr
			}
			continue
		}
		return err
	}
	return fmt.Errorf("gave up after repeated conflicts: %w", err)
}

func constraintOf(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	return ""
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
		// over by the allocator: it goes to the free list.
		_, err := tx.Exec(ctx, `WITH released AS (
				DELETE FROM reserved_addresses WHERE server_id = $1 AND NOT ip = ANY($2) RETURNING ip)
			INSERT INTO free_addresses (server_id, ip)
			SELECT $1, r.ip FROM released r, servers s WHERE s.id = $1 AND r.ip < s.next_ip
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

// UserByID finds a user by wgbot's id.
func (s *Store) UserByID(ctx context.Context, id int64) (wgbot.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}
