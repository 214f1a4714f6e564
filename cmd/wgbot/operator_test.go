package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/config"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/wireguard/wgconf"
	"wgbot/wireguard/wgtest"
)

// testMasterKey is 32 bytes of 0x07 in base64; tests never use the default
// key file under /var/lib.
const testMasterKey = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="

// opWorld is a fresh database and a wg0.conf for the operator CLI to work
// on, run as the real binary in child processes.
type opWorld struct {
	env       map[string]string
	pool      *pgxpool.Pool
	confPath  string
	serverKey wgtypes.Key // the server's public key
}

// newOpWorld prepares file-only apply mode: the CLI keeps wg0.conf (with
// an [Interface] the operator wrote) and leaves the device alone.
func newOpWorld(t *testing.T, extraConf string) *opWorld {
	t.Helper()
	priv, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	w := &opWorld{confPath: filepath.Join(t.TempDir(), "wg0.conf"), serverKey: priv.PublicKey()}
	conf := fmt.Sprintf("[Interface]\nAddress = 10.8.0.1/24\nListenPort = 51820\nPrivateKey = %s\n%s", priv, extraConf)
	if err := os.WriteFile(w.confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	w.env = map[string]string{
		"DATABASE_URL":   url,
		"MASTER_KEY":     testMasterKey,
		"WG_ENDPOINT":    "vpn.example.com:51820",
		"WG_APPLY_MODE":  "file",
		"WG_CONFIG_PATH": w.confPath,
		"LOG_LEVEL":      "warn",
	}
	if w.pool, err = pgxpool.New(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.pool.Close)
	return w
}

// result is one finished CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// wgbot runs the CLI and returns what it printed and its exit code.
func (w *opWorld) wgbot(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := runWgbot(w.env, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run wgbot %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs the CLI and fails the test unless it exits 0.
func (w *opWorld) ok(t *testing.T, args ...string) result {
	t.Helper()
	r := w.wgbot(t, args...)
	if r.code != 0 {
		t.Fatalf("wgbot %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// okJSON runs the CLI with --json and decodes its output into v.
func (w *opWorld) okJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	r := w.ok(t, append(args, "--json")...)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("wgbot %s --json: output does not decode: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// dbPeer is a peer as the database holds it.
type dbPeer struct {
	ID        int64
	IP        netip.Addr
	PublicKey string
	Status    string
}

func (w *opWorld) peersOf(t *testing.T, telegramID int64) []dbPeer {
	t.Helper()
	rows, err := w.pool.Query(context.Background(), `SELECT p.id, p.ip, p.public_key, p.status FROM peers p
		JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1 ORDER BY p.id`, telegramID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []dbPeer
	for rows.Next() {
		var p dbPeer
		if err := rows.Scan(&p.ID, &p.IP, &p.PublicKey, &p.Status); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func (w *opWorld) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := w.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *opWorld) expiry(t *testing.T, telegramID int64) time.Time {
	t.Helper()
	var exp time.Time
	err := w.pool.QueryRow(context.Background(), `SELECT s.expires_at FROM subscriptions s JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1 AND s.status = 'active'`, telegramID).Scan(&exp)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// fileManaged is the managed peers of wg0.conf.
func (w *opWorld) fileManaged(t *testing.T) []wgconf.Peer {
	t.Helper()
	raw, err := os.ReadFile(w.confPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wgconf.Parse(raw)
	if err != nil {
		t.Fatalf("wg0.conf does not parse: %v\n%s", err, raw)
	}
	return f.ManagedPeers()
}

// checkClientConfig parses conf as WireGuard config and checks it against
// the database's peer: same address, same key pair, and the server's key
// and endpoint.
func (w *opWorld) checkClientConfig(t *testing.T, conf string, want dbPeer) {
	t.Helper()
	f, err := wgconf.Parse([]byte(conf))
	if err != nil {
		t.Fatalf("client config does not parse: %v\n%s", err, conf)
	}
	ifc, ok := f.Interface()
	if !ok {
		t.Fatalf("client config has no [Interface]:\n%s", conf)
	}
	if want32 := []netip.Prefix{netip.PrefixFrom(want.IP, 32)}; !slices.Equal(ifc.Addresses, want32) {
		t.Errorf("Address = %v, database has %v", ifc.Addresses, want32)
	}
	priv, err := wgtypes.ParseKey(ifc.PrivateKey)
	if err != nil {
		t.Fatalf("PrivateKey: %v", err)
	}
	if got := priv.PublicKey().String(); got != want.PublicKey {
		t.Errorf("the config's private key belongs to %s, the database's peer is %s", got, want.PublicKey)
	}
	peers := f.UnmanagedPeers()
	if len(peers) != 1 {
		t.Fatalf("client config has %d [Peer] sections, want 1:\n%s", len(peers), conf)
	}
	if peers[0].PublicKey != w.serverKey.String() || peers[0].Endpoint != "vpn.example.com:51820" || peers[0].PresharedKey == "" {
		t.Errorf("[Peer] = %+v, want the server %s at vpn.example.com:51820 with a preshared key", peers[0], w.serverKey)
	}
}

// splitIssueOutput cuts `wgbot issue`'s text into the config and the QR
// code that follows it.
func splitIssueOutput(t *testing.T, out string) (conf, qr string) {
	t.Helper()
	lines := strings.SplitAfter(out, "\n")
	first, last := -1, -1
	for i, l := range lines {
		if strings.ContainsAny(l, "█▀▄") {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		t.Fatalf("no QR code in the output:\n%s", out)
	}
	return strings.TrimRight(strings.Join(lines[:first], ""), "\n") + "\n", strings.Join(lines[first:last+1], "")
}

// decodeTerminalQR reads back a QR code drawn by QRCodeTerminal: each
// character is two modules stacked, a space is dark on dark ("on" modules
// are the terminal's background).
func decodeTerminalQR(t *testing.T, art string) string {
	t.Helper()
	var modules [][]bool // true: dark module
	for _, line := range strings.Split(strings.TrimRight(art, "\n"), "\n") {
		var top, bottom []bool
		for _, r := range line {
			switch r {
			case ' ':
				top, bottom = append(top, true), append(bottom, true)
			case '█':
				top, bottom = append(top, false), append(bottom, false)
			case '▄':
				top, bottom = append(top, true), append(bottom, false)
			case '▀':
				top, bottom = append(top, false), append(bottom, true)
			default:
				t.Fatalf("unexpected character %q in the QR code", r)
			}
		}
		modules = append(modules, top, bottom)
	}
	// A wide white margin around the code, as a phone sees the screen: a
	// finder pattern estimated near the edge is then still inside.
	const scale, margin = 4, 8
	img := image.NewGray(image.Rect(0, 0, (len(modules[0])+2*margin)*scale, (len(modules)+2*margin)*scale))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for y, row := range modules {
		for x, dark := range row {
			c := color.Gray{Y: 255}
			if dark {
				c = color.Gray{Y: 0}
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+margin)*scale+dx, (y+margin)*scale+dy, c)
				}
			}
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the QR code does not decode: %v", err)
	}
	return res.GetText()
}

func TestIssue(t *testing.T) {
	w := newOpWorld(t, "")

	t.Run("prints the config and its QR code", func(t *testing.T) {
		r := w.ok(t, "issue", "--telegram-id", "1001", "--days", "30")
		conf, qr := splitIssueOutput(t, r.stdout)
		if !strings.Contains(r.stdout, "issued device-1 of Telegram user 1001") || !strings.Contains(r.stdout, "WireGuard: up to date") {
			t.Errorf("no summary after the QR code:\n%s", r.stdout)
		}
		peers := w.peersOf(t, 1001)
		if len(peers) != 1 {
			t.Fatalf("want 1 peer in the database, got %v", peers)
		}
		w.checkClientConfig(t, conf, peers[0])
		if got := decodeTerminalQR(t, qr); got != conf {
			t.Errorf("the QR code holds\n%s\nnot the printed config\n%s", got, conf)
		}
		// Applied in-process, with no `wgbot serve` running.
		managed := w.fileManaged(t)
		if len(managed) != 1 || managed[0].PublicKey != peers[0].PublicKey || managed[0].ID != fmt.Sprint(peers[0].ID) {
			t.Errorf("wg0.conf's managed peers = %+v, want peer %d", managed, peers[0].ID)
		}
	})

	t.Run("a device beyond the limit grants nothing", func(t *testing.T) {
		before := w.expiry(t, 1001)
		r := w.wgbot(t, "issue", "--telegram-id", "1001", "--days", "30")
		if r.code != exitFailure || !strings.Contains(r.stderr, "--devices 2") {
			t.Fatalf("want exit %d and a hint to pass --devices 2, got %d:\n%s", exitFailure, r.code, r.stderr)
		}
		if after := w.expiry(t, 1001); !after.Equal(before) {
			t.Errorf("the refused issue still moved the expiry from %v to %v", before, after)
		}
		if n := len(w.peersOf(t, 1001)); n != 1 {
			t.Errorf("the refused issue left %d peers", n)
		}
	})

	t.Run("second device with --json", func(t *testing.T) {
		before := w.expiry(t, 1001)
		var v issueView
		w.okJSON(t, &v, "issue", "--telegram-id", "1001", "--days", "30", "--devices", "2")
		peers := w.peersOf(t, 1001)
		if len(peers) != 2 {
			t.Fatalf("want 2 peers, got %v", peers)
		}
		w.checkClientConfig(t, v.Config, peers[1])
		if v.Device.ID != peers[1].ID || v.Device.IP != peers[1].IP.String() || v.Device.Name != "device-2" || v.NewUser {
			t.Errorf("JSON device = %+v, new_user %v; database has %+v", v.Device, v.NewUser, peers[1])
		}
		if want := before.AddDate(0, 0, 30); !v.Subscription.ExpiresAt.Equal(want) || v.Subscription.DeviceLimit != 2 {
			t.Errorf("subscription = %+v, want expiry %v and 2 devices", v.Subscription, want)
		}
		if v.Reconcile == nil || v.Reconcile.Error != "" || !v.Reconcile.FileChanged {
			t.Errorf("reconcile = %+v, want wg0.conf rewritten", v.Reconcile)
		}
		if n := len(w.fileManaged(t)); n != 2 {
			t.Errorf("wg0.conf has %d managed peers, want 2", n)
		}
	})

	t.Run("--out writes 0600 and refuses to overwrite", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "alice.conf")
		r := w.ok(t, "issue", "--telegram-id", "1002", "--days", "7", "--out", out)
		if strings.Contains(r.stdout, "PrivateKey") || !strings.Contains(r.stdout, out) {
			t.Errorf("with --out, stdout should name the file and hold no config:\n%s", r.stdout)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", out, fi.Mode().Perm())
		}
		written, _ := os.ReadFile(out)
		peers := w.peersOf(t, 1002)
		if len(peers) != 1 {
			t.Fatalf("want 1 peer, got %v", peers)
		}
		w.checkClientConfig(t, string(written), peers[0])

		total := w.count(t, `SELECT count(*) FROM peers`)
		r = w.wgbot(t, "issue", "--telegram-id", "1002", "--days", "7", "--devices", "2", "--out", out)
		if r.code != exitFailure || !strings.Contains(r.stderr, "refusing to overwrite "+out) {
			t.Fatalf("want exit %d refusing to overwrite, got %d:\n%s", exitFailure, r.code, r.stderr)
		}
		if again, _ := os.ReadFile(out); !bytes.Equal(again, written) {
			t.Error("the refused issue changed the existing file")
		}
		if n := w.count(t, `SELECT count(*) FROM peers`); n != total {
			t.Errorf("the refused issue created a peer (%d → %d)", total, n)
		}

		// A taken name is refused before anything is registered either.
		r = w.wgbot(t, "issue", "--telegram-id", "1003", "--days", "7", "--out", out)
		if r.code != exitFailure || w.count(t, `SELECT count(*) FROM users WHERE telegram_id = 1003`) != 0 {
			t.Errorf("exit %d; a refused --out must not register the user:\n%s", r.code, r.stderr)
		}
	})
}

func TestRevokeRemovesThePeer(t *testing.T) {
	w := newOpWorld(t, "")
	w.ok(t, "issue", "--telegram-id", "2001", "--days", "30")
	w.ok(t, "issue", "--telegram-id", "2002", "--days", "30")
	alice, bob := w.peersOf(t, 2001)[0], w.peersOf(t, 2002)[0]
	if n := len(w.fileManaged(t)); n != 2 {
		t.Fatalf("wg0.conf has %d managed peers before the revoke, want 2", n)
	}

	var v revokeView
	w.okJSON(t, &v, "revoke", "2001")
	if len(v.RevokedDevices) != 1 || v.RevokedDevices[0].ID != alice.ID || v.Reconcile == nil || v.Reconcile.Error != "" {
		t.Errorf("revoke reported %+v", v)
	}
	managed := w.fileManaged(t)
	if len(managed) != 1 || managed[0].PublicKey != bob.PublicKey {
		t.Errorf("after revoke wg0.conf's managed peers = %+v, want only %s", managed, bob.PublicKey)
	}
	if p := w.peersOf(t, 2001)[0]; p.Status != "revoked" {
		t.Errorf("peer status %q, want revoked", p.Status)
	}
	var revoked []peerView
	w.okJSON(t, &revoked, "peers", "list", "--status", "revoked")
	if len(revoked) != 1 || revoked[0].PublicKey != alice.PublicKey || revoked[0].TelegramID != 2001 {
		t.Errorf("peers list --status revoked = %+v", revoked)
	}
	var plan reconcileView
	w.okJSON(t, &plan, "reconcile", "--dry-run")
	if len(plan.Plan.Changes) != 0 || plan.Plan.FileRewrite {
		t.Errorf("after revoke the dry run still finds changes: %+v", plan.Plan)
	}
	// Nothing left to revoke: the not-found exit code.
	if r := w.wgbot(t, "revoke", "2001"); r.code != exitNotFound {
		t.Errorf("second revoke: exit %d, want %d\n%s", r.code, exitNotFound, r.stderr)
	}
}

func TestUsersAndPeers(t *testing.T) {
	w := newOpWorld(t, "")
	ctx := context.Background()
	if _, err := w.pool.Exec(ctx, `INSERT INTO users (telegram_id, username, first_name, language) VALUES (3002, 'bob', 'Bob', 'ru')`); err != nil {
		t.Fatal(err)
	}
	w.ok(t, "issue", "--telegram-id", "3001", "--days", "30")
	w.ok(t, "grant", "@bob", "10")
	if _, err := w.pool.Exec(ctx, `INSERT INTO payments (provider, provider_payment_id, user_id, amount, currency, status, days)
		SELECT 'stars', 'charge-1', id, 150, 'XTR', 'credited', 30 FROM users WHERE telegram_id = 3002`); err != nil {
		t.Fatal(err)
	}

	var users []userRow
	w.okJSON(t, &users, "users", "list")
	if len(users) != 2 {
		t.Fatalf("users list: %+v", users)
	}
	bob := users[0]
	if bob.TelegramID != 3002 {
		bob = users[1]
	}
	if bob.Username != "bob" || bob.Language != "ru" || bob.Devices != 1 || bob.Subscription == nil || bob.Subscription.Status != "active" {
		t.Errorf("bob in users list = %+v", bob)
	}

	text := w.ok(t, "users", "list").stdout
	lines := strings.Split(text, "\n")
	col := strings.Index(lines[0], "USERNAME")
	for _, l := range lines[1:3] {
		if len(l) <= col || l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("column USERNAME is not aligned:\n%s", text)
		}
	}
	if !strings.Contains(text, "@bob") || !strings.Contains(text, "2 user(s)") {
		t.Errorf("users list:\n%s", text)
	}

	var detail userDetail
	w.okJSON(t, &detail, "users", "show", "@bob")
	peers := w.peersOf(t, 3002)
	if detail.User.TelegramID != 3002 || len(detail.Subscriptions) != 1 || len(detail.Devices) != 1 ||
		detail.Devices[0].IP != peers[0].IP.String() || len(detail.Payments) != 1 || detail.Payments[0].Amount != 150 {
		t.Errorf("users show @bob = %+v", detail)
	}
	shown := w.ok(t, "users", "show", "3002").stdout
	for _, want := range []string{"@bob", peers[0].IP.String(), peers[0].PublicKey, "charge-1", "150 XTR"} {
		if !strings.Contains(shown, want) {
			t.Errorf("users show lacks %q:\n%s", want, shown)
		}
	}

	tests := []struct {
		args []string
		want int
	}{
		{[]string{"peers", "list"}, 2},
		{[]string{"peers", "list", "--status", "active"}, 2},
		{[]string{"peers", "list", "--status", "revoked"}, 0},
		{[]string{"peers", "list", "--server", "wg0", "--status", "active"}, 2},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var list []peerView
			w.okJSON(t, &list, tt.args...)
			if list == nil || len(list) != tt.want {
				t.Errorf("got %d peers (%+v), want %d", len(list), list, tt.want)
			}
		})
	}
}

func TestOperatorErrors(t *testing.T) {
	w := newOpWorld(t, "")
	tests := []struct {
		name    string
		args    []string
		code    int
		mention string
	}{
		{"unknown telegram id", []string{"users", "show", "999"}, exitNotFound, "999"},
		{"unknown username", []string{"users", "show", "@nobody", "--json"}, exitNotFound, "@nobody"},
		{"grant to unknown", []string{"grant", "999", "5"}, exitNotFound, "999"},
		{"revoke unknown", []string{"revoke", "999"}, exitNotFound, "999"},
		{"unknown server", []string{"peers", "list", "--server", "nope"}, exitNotFound, `"nope"`},
		{"days not a number", []string{"grant", "999", "five"}, exitUsage, "days"},
		{"bad status", []string{"peers", "list", "--status", "gone"}, exitUsage, "active, disabled or revoked"},
		{"issue without a user", []string{"issue", "--days", "3"}, exitUsage, "--telegram-id"},
		{"issue with an unknown flag", []string{"issue", "--telegram-id", "5", "--days", "3", "--bogus"}, exitUsage, "-bogus"},
		{"users without a subcommand", []string{"users"}, exitUsage, "list or show"},
		{"users show without a user", []string{"users", "show"}, exitUsage, "usage: wgbot users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := w.wgbot(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.mention) {
				t.Errorf("exit %d, want %d mentioning %s; stderr:\n%s", r.code, tt.code, tt.mention, r.stderr)
			}
		})
	}
	if n := w.count(t, `SELECT count(*) FROM users`); n != 0 {
		t.Errorf("failed commands registered %d users", n)
	}
}

// The device end to end: drift made by hand on a real wireguard-go device
// and in wg0.conf is listed by a dry run that changes nothing, and repaired
// by a reconcile.
func TestReconcileDryRunOnDevice(t *testing.T) {
	wgtest.RequireTools(t)
	ns := wgtest.Netns(t, "op")
	iface := wgtest.UniqueName(t, "wgo")
	wgtest.StartWireGuardGo(t, ns, iface)
	wg, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wg.Close() })

	hand, _ := wgtypes.GeneratePrivateKey()
	handPub := hand.PublicKey()
	w := newOpWorld(t, fmt.Sprintf("\n# the operator's own router\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.8.0.250/32\n", handPub))
	original, _ := os.ReadFile(w.confPath)
	f, _ := wgconf.Parse(original)
	ifc, _ := f.Interface()
	priv, _ := wgtypes.ParseKey(ifc.PrivateKey)
	port := 51820
	if err := wg.ConfigureDevice(iface, wgtypes.Config{PrivateKey: &priv, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	w.env["WG_APPLY_MODE"] = "device"
	w.env["WG_INTERFACE"] = iface

	devicePeers := func() map[string]string { // public key → allowed IPs
		t.Helper()
		d, err := wg.Device(iface)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range d.Peers {
			out[p.PublicKey.String()] = fmt.Sprint(ipNets(p.AllowedIPs))
		}
		return out
	}

	w.ok(t, "issue", "--telegram-id", "4001", "--days", "30")
	w.ok(t, "issue", "--telegram-id", "4002", "--days", "30")
	a, b := w.peersOf(t, 4001)[0], w.peersOf(t, 4002)[0]
	if got := devicePeers(); len(got) != 3 || got[a.PublicKey] == "" || got[b.PublicKey] == "" || got[handPub.String()] == "" {
		t.Fatalf("after two issues the device has %v", got)
	}

	// Drift by hand: a managed peer removed from the device, a stray added,
	// and wg0.conf restored from a backup that predates both devices.
	stray, _ := wgtypes.GeneratePrivateKey()
	wgtest.Exec(t, ns, "wg", "set", iface, "peer", a.PublicKey, "remove")
	wgtest.Exec(t, ns, "wg", "set", iface, "peer", stray.PublicKey().String(), "allowed-ips", "10.8.0.240/32")
	if err := os.WriteFile(w.confPath, original, 0o600); err != nil {
		t.Fatal(err)
	}
	deviceBefore := devicePeers()
	revision := w.count(t, `SELECT revision FROM servers`)

	var dry reconcileView
	w.okJSON(t, &dry, "reconcile", "--dry-run")
	type change struct{ target, action, kind, key string }
	var got []change
	for _, c := range dry.Plan.Changes {
		got = append(got, change{c.Target, c.Action, c.Kind, c.PublicKey})
	}
	want := []change{
		{"file", "add", "wgbot", a.PublicKey},
		{"file", "add", "wgbot", b.PublicKey},
		{"device", "add", "wgbot", a.PublicKey},
		{"device", "remove", "stray", stray.PublicKey().String()},
	}
	if !slices.Equal(got, want) || !dry.Plan.FileRewrite || !dry.Plan.DeviceChecked || dry.Result != nil {
		t.Fatalf("dry run plan:\n got %+v\nwant %+v\n%+v", got, want, dry.Plan)
	}
	text := w.ok(t, "reconcile", "--dry-run").stdout
	for _, s := range []string{a.PublicKey, stray.PublicKey().String(), "stray", "10.8.0.240/32", "dry run: nothing changed"} {
		if !strings.Contains(text, s) {
			t.Errorf("dry run text lacks %q:\n%s", s, text)
		}
	}
	if after := devicePeers(); !maps.Equal(after, deviceBefore) {
		t.Errorf("the dry run changed the device:\nbefore %v\nafter  %v", deviceBefore, after)
	}
	if now, _ := os.ReadFile(w.confPath); !bytes.Equal(now, original) {
		t.Errorf("the dry run changed wg0.conf:\n%s", now)
	}
	if n := w.count(t, `SELECT revision FROM servers`); n != revision {
		t.Errorf("the dry run moved the server's revision %d → %d", revision, n)
	}

	var fix reconcileView
	w.okJSON(t, &fix, "reconcile")
	if r := fix.Result; r == nil || r.Error != "" || !r.FileChanged || r.Added != 1 || r.Removed != 1 || r.Updated != 0 {
		t.Errorf("reconcile did %+v; the plan said add 1, remove 1 on the device", fix.Result)
	}
	repaired := devicePeers()
	if len(repaired) != 3 || repaired[a.PublicKey] == "" || repaired[b.PublicKey] == "" || repaired[handPub.String()] == "" {
		t.Errorf("after reconcile the device has %v", repaired)
	}
	if n := len(w.fileManaged(t)); n != 2 {
		t.Errorf("after reconcile wg0.conf has %d managed peers, want 2", n)
	}
	var again reconcileView
	w.okJSON(t, &again, "reconcile", "--dry-run")
	if len(again.Plan.Changes) != 0 || again.Plan.FileRewrite {
		t.Errorf("after reconcile the dry run still finds %+v", again.Plan)
	}

	// A revoke from the CLI reaches the device with no `wgbot serve` running.
	w.ok(t, "revoke", "4002")
	if _, ok := devicePeers()[b.PublicKey]; ok {
		t.Error("the revoked peer is still on the device")
	}
}

// The shipped settings file documents every setting wgbot reads, nothing
// else, and with every line uncommented loads to exactly the defaults: the
// file cannot drift from config.Load.
func TestEnvExampleListsEverySetting(t *testing.T) {
	var read []string
	defaults, err := config.Load(func(name string) string { read = append(read, name); return "" }, os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../deploy/wgbot.env.example")
	if err != nil {
		t.Fatal(err)
	}
	setting := regexp.MustCompile(`^#?([A-Z][A-Z0-9_]*)=`)
	listed := map[string]bool{}
	var uncommented strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if m := setting.FindStringSubmatch(line); m != nil {
			if listed[m[1]] {
				t.Errorf("%s is listed twice", m[1])
			}
			listed[m[1]] = true
			line = strings.TrimPrefix(line, "#")
		}
		uncommented.WriteString(line + "\n")
	}
	for _, name := range read {
		if !listed[name] {
			t.Errorf("deploy/wgbot.env.example does not document %s", name)
		}
	}
	for name := range listed {
		if !slices.Contains(read, name) {
			t.Errorf("deploy/wgbot.env.example documents %s, which wgbot does not read", name)
		}
	}
	path := filepath.Join(t.TempDir(), "wgbot.env")
	if err := os.WriteFile(path, []byte(uncommented.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	documented, err := config.Load(func(string) string { return "" }, path)
	if err != nil {
		t.Fatalf("the example with every line uncommented does not load: %v", err)
	}
	if !reflect.DeepEqual(documented, defaults) {
		t.Errorf("the documented defaults differ from the real ones:\ndocumented %+v\nreal       %+v", documented, defaults)
	}
}

// After its own reconcile the CLI wakes a running serve (whose reconcile
// may have been newer than ours); a dry run wakes nobody.
func TestReconcileWakesServe(t *testing.T) {
	w := newOpWorld(t, "")
	ctx := context.Background()
	w.ok(t, "issue", "--telegram-id", "5001", "--days", "3")
	conn, err := pgx.Connect(ctx, w.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "LISTEN "+postgres.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	var server, revision int64
	if err := w.pool.QueryRow(ctx, `SELECT id, revision FROM servers`).Scan(&server, &revision); err != nil {
		t.Fatal(err)
	}
	next := func(within time.Duration) (string, bool) {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return "", false
		}
		return n.Payload, true
	}

	w.ok(t, "reconcile", "--dry-run")
	if payload, ok := next(300 * time.Millisecond); ok {
		t.Errorf("a dry run sent a notification: %q", payload)
	}
	w.ok(t, "reconcile")
	payload, ok := next(5 * time.Second)
	if want := fmt.Sprintf("%d:%d", server, revision); !ok || payload != want {
		t.Errorf("after reconcile: notification %q (received: %v), want %q", payload, ok, want)
	}
}
