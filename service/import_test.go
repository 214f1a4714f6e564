package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/importer"
	"wgbot/importer/importertest"
	"wgbot/postgres"
	"wgbot/service"
	"wgbot/service/servicetest"
)

// importServer is the server the tests import into: 10.8.0.0/24 with
// wg-easy's default IPv6 prefix.
func importServer() wgbot.Server {
	s := servicetest.DefaultServer()
	s.Subnet, s.Address = netip.MustParsePrefix("10.8.0.0/24"), netip.MustParseAddr("10.8.0.1")
	s.Subnet6 = netip.MustParsePrefix("fdcc:ad94:bacf:61a4::cafe:0/112")
	return s
}

// importedPeer is what the database holds of an imported client.
type importedPeer struct {
	name, status, subStatus, note string
	ip                            netip.Addr
	ip6                           *netip.Addr
	expires                       time.Time
	owner                         *int64
	keepalive                     *int
	sealed                        postgres.SealedPeer
}

func importedPeers(t *testing.T, st *servicetest.Stack) map[string]importedPeer {
	t.Helper()
	rows, err := st.Pool.Query(context.Background(), `SELECT p.public_key, p.name, p.status, s.status, p.note, p.ip, p.ip6, s.expires_at,
			s.user_id, p.keepalive, p.private_key_enc, p.preshared_key_enc, p.key_id
		FROM peers p JOIN subscriptions s ON s.id = p.subscription_id WHERE p.imported_from <> ''`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]importedPeer{}
	for rows.Next() {
		var p importedPeer
		var pub string
		if err := rows.Scan(&pub, &p.name, &p.status, &p.subStatus, &p.note, &p.ip, &p.ip6, &p.expires, &p.owner, &p.keepalive,
			&p.sealed.Secrets.PrivateKeySealed, &p.sealed.Secrets.PresharedSealed, &p.sealed.Secrets.KeyID); err != nil {
			t.Fatal(err)
		}
		p.sealed.Secrets.PublicKey = pub
		out[pub] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkImported asserts every client came in with its keys (sealed, and
// opening to the source's), address, name, status and expiry.
func checkImported(t *testing.T, st *servicetest.Stack, clients []importertest.Client, privateKnown bool, defaultExpiry time.Time) {
	t.Helper()
	got := importedPeers(t, st)
	if len(got) != len(clients) {
		t.Fatalf("%d peers imported, want %d", len(got), len(clients))
	}
	for _, c := range clients {
		p, ok := got[c.Public()]
		if !ok {
			t.Fatalf("%s not imported", c.Name)
		}
		if p.name != c.Name || p.ip != netip.MustParseAddr(c.IP) || p.owner != nil {
			t.Errorf("%s: name %q ip %s owner %v", c.Name, p.name, p.ip, p.owner)
		}
		if c.IP6 != "" && (p.ip6 == nil || *p.ip6 != netip.MustParseAddr(c.IP6)) {
			t.Errorf("%s: ip6 %v, want %s", c.Name, p.ip6, c.IP6)
		}
		wantStatus := wgbot.PeerActive
		if !c.Enabled || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			wantStatus = wgbot.PeerDisabled
		}
		if p.status != wantStatus {
			t.Errorf("%s: status %s, want %s", c.Name, p.status, wantStatus)
		}
		want := defaultExpiry
		if !c.Expires.IsZero() {
			want = c.Expires
		}
		if d := p.expires.Sub(want); d > time.Minute || d < -time.Minute {
			t.Errorf("%s: expires %v, want %v", c.Name, p.expires, want)
		}
		if c.Email != "" && p.note != c.Email {
			t.Errorf("%s: note %q, want the email %q", c.Name, p.note, c.Email)
		}
		psk, err := st.Keys.OpenPresharedKey(p.sealed.Secrets)
		if err != nil || psk != c.PSK {
			t.Errorf("%s: preshared key not kept (%v)", c.Name, err)
		}
		priv, _, err := st.Keys.OpenPeer(p.sealed.Secrets)
		switch {
		case privateKnown && (err != nil || priv != c.Key):
			t.Errorf("%s: private key not kept (%v)", c.Name, err)
		case !privateKnown && !errors.Is(err, wgbot.ErrNoClientKey):
			t.Errorf("%s: a wg-quick peer's private key is unknown, got %v", c.Name, err)
		}
		for _, secret := range [][]byte{c.Key[:], c.PSK[:]} {
			sealed := append(append([]byte{}, p.sealed.Secrets.PrivateKeySealed...), p.sealed.Secrets.PresharedSealed...)
			if secret[0]|secret[1]|secret[2] != 0 && bytes.Contains(sealed, secret) {
				t.Errorf("%s: a key is stored in plain text", c.Name)
			}
		}
	}
}

func countRows(t *testing.T, st *servicetest.Stack, query string) int {
	t.Helper()
	var n int
	if err := st.Pool.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// importTwice runs a dry run (nothing written), the import, and the same
// import again (nothing to do).
func importTwice(t *testing.T, st *servicetest.Stack, l importer.List, o service.ImportOptions, want int) service.ImportResult {
	t.Helper()
	ctx := context.Background()
	o.ServerID, o.Apply = st.Server.ID, false
	dry, err := st.Service.Import(ctx, l, o)
	if err != nil || len(dry.Created) != want {
		t.Fatalf("dry run: %d to create, want %d; problems %v, %v", len(dry.Created), want, dry.Problems, err)
	}
	if n := countRows(t, st, `SELECT count(*) FROM peers`) + countRows(t, st, `SELECT count(*) FROM subscriptions`); n != 0 {
		t.Fatalf("the dry run wrote %d rows", n)
	}
	o.Apply = true
	res, err := st.Service.Import(ctx, l, o)
	if err != nil || len(res.Created) != want || len(res.Claims) != want {
		t.Fatalf("import: %d created, want %d; problems %v, %v", len(res.Created), want, res.Problems, err)
	}
	again, err := st.Service.Import(ctx, l, o)
	if err != nil || len(again.Created) != 0 || len(again.Unchanged) != want {
		t.Fatalf("second run: %d created, %d unchanged; %v", len(again.Created), len(again.Unchanged), err)
	}
	return res
}

func TestImportWgQuick(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	srvKey, _ := wgtypes.GeneratePrivateKey()
	clients := []importertest.Client{importertest.NewClient("alice-phone", "10.8.0.5"), importertest.NewClient("bob laptop", "10.8.0.9")}
	clients[1].PSK = wgtypes.Key{} // a peer without a preshared key
	clients[1].Keepalive = 25
	clients[0].IP6 = "fdcc:ad94:bacf:61a4::cafe:5"
	l, err := importer.WgQuick([]byte(importertest.WgQuick(srvKey, "10.8.0.1/24", clients)))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Skipped) != 1 || l.Skipped[0].Name != "office router (site-to-site)" {
		t.Fatalf("the site-to-site peer should be skipped: %+v", l.Skipped)
	}
	if l.Clients[1].Keepalive != 25 || l.Clients[0].Keepalive != 0 {
		t.Fatalf("keepalives not read: %+v", l.Clients)
	}
	// Without an expiry from the source or the operator, nothing happens.
	_, err = st.Service.Import(context.Background(), l, service.ImportOptions{ServerID: st.Server.ID, Apply: true})
	if !errors.Is(err, postgres.ErrImportRefused) || countRows(t, st, `SELECT count(*) FROM peers`) != 0 {
		t.Fatalf("an import with no expiry for its clients: %v", err)
	}
	importTwice(t, st, l, service.ImportOptions{Days: 30}, 2)
	checkImported(t, st, clients, false, time.Now().AddDate(0, 0, 30))

	// The allocator: the mark is past .9, the hosts stepped over are free,
	// so the next device gets the lowest of them.
	var next netip.Addr
	if err := st.Pool.QueryRow(context.Background(), `SELECT next_ip FROM servers WHERE id = $1`, st.Server.ID).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next != netip.MustParseAddr("10.8.0.10") || countRows(t, st, `SELECT count(*) FROM free_addresses`) != 6 {
		t.Fatalf("high-water mark %s, %d free (want 10.8.0.10 and .2-.4, .6-.8 free)", next, countRows(t, st, `SELECT count(*) FROM free_addresses`))
	}
	u, err := st.Service.Register(context.Background(), wgbot.User{TelegramID: 501}, "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.Service.IssueTrial(context.Background(), u)
	if err != nil || d.Peer.IP != netip.MustParseAddr("10.8.0.2") {
		t.Fatalf("the next device got %s, want 10.8.0.2 (%v)", d.Peer.IP, err)
	}
}

func TestImportWgEasyJSON(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	srvKey, _ := wgtypes.GeneratePrivateKey()
	clients := []importertest.Client{importertest.NewClient("anna", "10.8.0.2"), importertest.NewClient("boris", "10.8.0.3"),
		importertest.NewClient("vera", "10.8.0.4")}
	clients[0].Expires = time.Date(2031, 5, 1, 23, 59, 59, 0, time.UTC)
	clients[1].Enabled = false
	clients[2].Expires = time.Date(2020, 1, 1, 23, 59, 59, 0, time.UTC) // expired already
	l, err := importer.Read(importer.FromWgEasy, importertest.WgEasyJSON(t, t.TempDir(), srvKey, clients))
	if err != nil {
		t.Fatal(err)
	}
	importTwice(t, st, l, service.ImportOptions{NoExpiry: true}, 3)
	checkImported(t, st, clients, true, service.NoExpiry)
	got := importedPeers(t, st)
	if got[clients[2].Public()].subStatus != wgbot.SubscriptionExpired || got[clients[0].Public()].subStatus != wgbot.SubscriptionActive {
		t.Fatal("an expired client's subscription should come in expired, a live one active")
	}
}

func TestImportWgEasySQLite(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	srvKey, _ := wgtypes.GeneratePrivateKey()
	var clients []importertest.Client
	for i := range 4 {
		c := importertest.NewClient(fmt.Sprintf("client %d", i+1), fmt.Sprintf("10.8.0.%d", i+2))
		c.IP6 = fmt.Sprintf("fdcc:ad94:bacf:61a4::cafe:%d", i+2)
		clients = append(clients, c)
	}
	clients[0].Expires = time.Date(2030, 12, 31, 0, 0, 0, 0, time.UTC)
	clients[3].Enabled = false
	path := importertest.WgEasySQLite(t, t.TempDir(), srvKey, clients)
	l, err := importer.Read(importer.FromWgEasy, path)
	if err != nil {
		t.Fatal(err)
	}
	importTwice(t, st, l, service.ImportOptions{Days: 10}, 4)
	checkImported(t, st, clients, true, time.Now().AddDate(0, 0, 10))
}

func TestImportWireguardUI(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	clients := []importertest.Client{importertest.NewClient("Office PC", "10.8.0.20"), importertest.NewClient("Tablet", "10.8.0.21")}
	clients[0].Email = "pc@example.com"
	clients[1].Enabled = false
	dir := importertest.WireguardUI(t, t.TempDir(), clients)
	l, err := importer.Read(importer.FromWireguardUI, dir)
	if err != nil {
		t.Fatal(err)
	}
	importTwice(t, st, l, service.ImportOptions{Days: 365}, 2)
	checkImported(t, st, clients, true, time.Now().AddDate(0, 0, 365))
}

// TestImportRefusesClashes: an address a live peer holds, one outside the
// subnet, the server's own address and an IPv6 address off wgbot's
// mapping each refuse the whole import, which
// then changes nothing: not the peers, not the allocator.
func TestImportRefusesClashes(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	ctx := context.Background()
	u, err := st.Service.Register(ctx, wgbot.User{TelegramID: 502}, "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.Service.IssueTrial(ctx, u) // 10.8.0.2
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := wgtypes.GeneratePrivateKey()
	clients := []importertest.Client{importertest.NewClient("fine", "10.8.0.50"), importertest.NewClient("clash", d.Peer.IP.String()),
		importertest.NewClient("outside", "10.9.0.7"), importertest.NewClient("server", "10.8.0.1"), importertest.NewClient("v6", "10.8.0.60")}
	clients[4].IP6 = "fdcc:ad94:bacf:61a4::cafe:99" // not the host number of 10.8.0.60
	l, err := importer.WgQuick([]byte(importertest.WgQuick(srvKey, "10.8.0.1/24", clients)))
	if err != nil {
		t.Fatal(err)
	}
	before := countRows(t, st, `SELECT count(*) FROM peers`)
	var next netip.Addr
	res, err := st.Service.Import(ctx, l, service.ImportOptions{ServerID: st.Server.ID, Apply: true, Days: 30})
	if !errors.Is(err, postgres.ErrImportRefused) || len(res.Problems) != 4 {
		t.Fatalf("want the import refused with 4 problems, got %v: %q", err, res.Problems)
	}
	if err := st.Pool.QueryRow(ctx, `SELECT next_ip FROM servers`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if countRows(t, st, `SELECT count(*) FROM peers`) != before || countRows(t, st, `SELECT count(*) FROM subscriptions`) != 1 ||
		next != netip.MustParseAddr("10.8.0.3") || countRows(t, st, `SELECT count(*) FROM peer_claims`) != 0 {
		t.Fatalf("a refused import changed something (next_ip %s)", next)
	}
}

// TestClaimStampede: 10 imported devices, 20 users opening the links at
// once, two per link: each device gets exactly one owner, the other
// opener is refused; a wg-easy device (key known) comes with its config,
// a wg-quick one says its config cannot be shown.
func TestClaimStampede(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	ctx := context.Background()
	srvKey, _ := wgtypes.GeneratePrivateKey()
	var easy, quick []importertest.Client
	for i := range 5 {
		easy = append(easy, importertest.NewClient(fmt.Sprintf("easy-%d", i), fmt.Sprintf("10.8.0.%d", 10+i)))
		quick = append(quick, importertest.NewClient(fmt.Sprintf("quick-%d", i), fmt.Sprintf("10.8.0.%d", 20+i)))
	}
	dir := t.TempDir()
	le, err := importer.Read(importer.FromWgEasy, importertest.WgEasyJSON(t, dir, srvKey, easy))
	if err != nil {
		t.Fatal(err)
	}
	lq, err := importer.WgQuick([]byte(importertest.WgQuick(srvKey, "10.8.0.1/24", quick)))
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, l := range []importer.List{le, lq} {
		res, err := st.Service.Import(ctx, l, service.ImportOptions{ServerID: st.Server.ID, Apply: true, Days: 30})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, res.Claims...)
	}
	if len(tokens) != 10 {
		t.Fatalf("%d claim tokens", len(tokens))
	}
	users := make([]wgbot.User, 20)
	for i := range users {
		if users[i], err = st.Service.Register(ctx, wgbot.User{TelegramID: int64(600 + i)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	type outcome struct {
		res service.ClaimResult
		err error
	}
	results := make([]outcome, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := st.Service.Claim(ctx, users[i], service.ClaimPrefix+tokens[i%10])
			results[i] = outcome{r, err}
		}()
	}
	close(start)
	wg.Wait()
	owners := map[int]int64{}
	for i, o := range results {
		link := i % 10
		switch {
		case o.err == nil:
			if _, dup := owners[link]; dup {
				t.Fatalf("link %d claimed twice", link)
			}
			owners[link] = users[i].ID
			if o.res.Subscription.UserID != users[i].ID {
				t.Fatalf("the claimer does not own the subscription: %+v", o.res.Subscription)
			}
			if known := o.res.Delivery != nil; known != (link < 5) {
				t.Fatalf("link %d: config shown %v, want %v (the private key is known for wg-easy only)", link, known, link < 5)
			}
		case errors.Is(o.err, wgbot.ErrClaimUsed):
		default:
			t.Fatalf("user %d: %v", i, o.err)
		}
	}
	if len(owners) != 10 {
		t.Fatalf("%d of 10 devices have an owner", len(owners))
	}
	if n := countRows(t, st, `SELECT count(*) FROM subscriptions s JOIN peers p ON p.subscription_id = s.id WHERE s.user_id IS NULL`); n != 0 {
		t.Fatalf("%d devices have no owner after the stampede", n)
	}
	// The owner may open the link again; anyone else is refused, and an
	// unknown token is refused clearly.
	if _, err := st.Service.Claim(ctx, users[0], service.ClaimPrefix+tokens[0]); err != nil && owners[0] == users[0].ID {
		t.Fatalf("the owner opening the link again: %v", err)
	}
	late, _ := st.Service.Register(ctx, wgbot.User{TelegramID: 699}, "")
	if _, err := st.Service.Claim(ctx, late, service.ClaimPrefix+tokens[3]); !errors.Is(err, wgbot.ErrClaimUsed) {
		t.Fatalf("a used link: %v", err)
	}
	if _, err := st.Service.Claim(ctx, late, "claim_nosuchtoken"); !errors.Is(err, wgbot.ErrClaimUnknown) {
		t.Fatalf("an unknown link: %v", err)
	}
}

// TestClaimJoinsLiveSubscription: a user who has a live subscription
// keeps one; the claimed device joins it with one more device allowed.
func TestClaimJoinsLiveSubscription(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	ctx := context.Background()
	srvKey, _ := wgtypes.GeneratePrivateKey()
	clients := []importertest.Client{importertest.NewClient("one", "10.8.0.30"), importertest.NewClient("two", "10.8.0.31")}
	l, err := importer.Read(importer.FromWgEasy, importertest.WgEasyJSON(t, t.TempDir(), srvKey, clients))
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Service.Import(ctx, l, service.ImportOptions{ServerID: st.Server.ID, Apply: true, Days: 40})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := st.Service.Register(ctx, wgbot.User{TelegramID: 700}, "")
	first, err := st.Service.Claim(ctx, u, res.Claims[0])
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.Service.Claim(ctx, u, res.Claims[1])
	if err != nil {
		t.Fatal(err)
	}
	if second.Subscription.ID != first.Subscription.ID || second.Subscription.DeviceLimit != 2 {
		t.Fatalf("second device not in the user's live subscription: %+v vs %+v", second.Subscription, first.Subscription)
	}
	peers, err := st.Service.Devices(ctx, u)
	if err != nil || len(peers) != 2 {
		t.Fatalf("the user's devices: %v, %v", peers, err)
	}
}

// TestBannedUserCannotClaim: a banned user's claim is refused like every
// other way to access, and the link stays for its rightful owner.
func TestBannedUserCannotClaim(t *testing.T) {
	st := servicetest.New(t, servicetest.Options{Server: importServer()})
	ctx := context.Background()
	srvKey, _ := wgtypes.GeneratePrivateKey()
	l, err := importer.WgQuick([]byte(importertest.WgQuick(srvKey, "10.8.0.1/24", []importertest.Client{importertest.NewClient("phone", "10.8.0.30")})))
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Service.Import(ctx, l, service.ImportOptions{ServerID: st.Server.ID, Apply: true, Days: 30})
	if err != nil || len(res.Claims) != 1 {
		t.Fatalf("import: %v, %d claims", err, len(res.Claims))
	}
	banned, err := st.Service.Register(ctx, wgbot.User{TelegramID: 801}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Service.Ban(ctx, banned, 0); err != nil {
		t.Fatal(err)
	}
	if banned, err = st.Service.UserByTelegramID(ctx, 801); err != nil || !banned.Banned {
		t.Fatalf("ban: %+v, %v", banned, err)
	}
	if _, err := st.Service.Claim(ctx, banned, res.Claims[0]); !errors.Is(err, wgbot.ErrBanned) {
		t.Fatalf("a banned user's claim: %v, want ErrBanned", err)
	}
	owner, err := st.Service.Register(ctx, wgbot.User{TelegramID: 802}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Service.Claim(ctx, owner, res.Claims[0]); err != nil {
		t.Fatalf("the link after a banned user tried it: %v", err)
	}
}
