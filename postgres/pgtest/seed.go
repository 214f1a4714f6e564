package pgtest

import (
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/secret"
)

// SeedPeers writes n active peers on the server by COPY, as a benchmark's
// starting point: real keys sealed with keys, addresses from first on,
// all on one subscription of one seed user (a new one for each call, so
// several servers can be seeded); the server's next address and revision
// move past them. It returns them as the wgctrl configs a
// reconciler adds (preshared key, one address, no keepalive), so a raw
// batch add of the same peers can be measured next to wgbot's.
func SeedPeers(tb testing.TB, pool *pgxpool.Pool, keys *secret.Keyring, serverID int64, first netip.Addr, n int) []wgtypes.PeerConfig {
	tb.Helper()
	if n == 0 {
		return nil
	}
	ctx := context.Background()
	var sub int64
	if err := pool.QueryRow(ctx, `WITH u AS (INSERT INTO users (telegram_id)
			SELECT coalesce(max(telegram_id), 0) + 1 FROM users RETURNING id)
		INSERT INTO subscriptions (user_id, plan, status, device_limit, starts_at, expires_at)
		SELECT id, 'seed', 'active', 100000, now(), now() + interval '1 year' FROM u RETURNING id`).Scan(&sub); err != nil {
		tb.Fatal(err)
	}
	rows := make([][]any, n)
	peers := make([]wgtypes.PeerConfig, n)
	ip := first
	var noKeepalive time.Duration
	for i := range n {
		priv, _ := wgtypes.GeneratePrivateKey()
		pub := priv.PublicKey()
		var psk wgtypes.Key
		rand.Read(psk[:])
		privSealed, keyID, err := keys.Seal(priv[:], []byte(pub.String()))
		if err != nil {
			tb.Fatal(err)
		}
		pskSealed, _, err := keys.Seal(psk[:], []byte(pub.String()))
		if err != nil {
			tb.Fatal(err)
		}
		rows[i] = []any{sub, serverID, "seed", ip, pub.String(), privSealed, pskSealed, keyID, "active"}
		peers[i] = wgtypes.PeerConfig{PublicKey: pub, PresharedKey: &psk, PersistentKeepaliveInterval: &noKeepalive, ReplaceAllowedIPs: true,
			AllowedIPs: []net.IPNet{{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}}
		ip = ip.Next()
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"peers"}, []string{"subscription_id", "server_id", "name", "ip", "public_key",
			"private_key_enc", "preshared_key_enc", "key_id", "status"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE servers SET next_ip = $2, revision = revision + 1 WHERE id = $1`, serverID, ip)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return peers
}
