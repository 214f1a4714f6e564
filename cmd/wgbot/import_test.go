package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/importer/importertest"
	"wgbot/wireguard/wgconf"
)

// TestImportCommand runs `wgbot import` as the binary on a hand-made
// wg0.conf: the dry run changes nothing, --apply wants the bot's name for
// the claim links, imports in one go and writes the claims CSV and
// wg0.conf (the peers now managed, the site-to-site peer still the
// operator's), a second run has nothing to do, and an import whose
// address clashes is refused with the problem listed.
func TestImportCommand(t *testing.T) {
	w := newOpWorld(t, "")
	srvKey, _ := wgtypes.GeneratePrivateKey()
	clients := []importertest.Client{importertest.NewClient("alice", "10.8.0.5"), importertest.NewClient("bob", "10.8.0.6")}
	if err := os.WriteFile(w.confPath, []byte(importertest.WgQuick(srvKey, "10.8.0.1/24", clients)), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "old-wg0.conf")
	data, _ := os.ReadFile(w.confPath)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}

	dry := w.ok(t, "import", "--from", "wg-quick", src, "--days", "30")
	for _, want := range []string{"would create 2", "skipped line", "office router (site-to-site)", "cannot be shown", "dry run: nothing was changed"} {
		if !strings.Contains(dry.stdout, want) {
			t.Fatalf("dry run output lacks %q:\n%s", want, dry.stdout)
		}
	}
	var n int
	if err := w.pool.QueryRow(t.Context(), `SELECT count(*) FROM peers`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the dry run wrote %d peers (%v)", n, err)
	}
	if r := w.wgbot(t, "import", "--from", "wg-quick", src, "--days", "30", "--apply"); r.code != exitUsage || !strings.Contains(r.stderr, "--bot") {
		t.Fatalf("--apply without --bot: exit %d\n%s", r.code, r.stderr)
	}

	claims := filepath.Join(t.TempDir(), "claims.csv")
	applied := w.ok(t, "import", "--from", "wg-quick", src, "--days", "30", "--apply", "--bot", "@test_vpn_bot", "--claims", claims)
	if !strings.Contains(applied.stdout, "created 2") || !strings.Contains(applied.stdout, "WireGuard: up to date") {
		t.Fatalf("apply output:\n%s", applied.stdout)
	}
	f, err := os.Open(claims)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 || rows[0][0] != "name" || rows[1][0] != "alice" ||
		!strings.HasPrefix(rows[1][1], "https://t.me/test_vpn_bot?start=claim_") || rows[1][1] == rows[2][1] {
		t.Fatalf("claims CSV: %q, %v", rows, err)
	}
	if st, _ := os.Stat(claims); st.Mode().Perm() != 0o600 {
		t.Fatalf("claims file mode %v: the links are credentials", st.Mode().Perm())
	}
	raw, _ := os.ReadFile(w.confPath)
	conf, err := wgconf.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(conf.ManagedPeers()) != 2 || len(conf.UnmanagedPeers()) != 1 || !strings.Contains(string(raw), "PostUp = iptables") {
		t.Fatalf("wg0.conf after the import:\n%s", raw)
	}

	again := w.ok(t, "import", "--from", "wg-quick", src, "--days", "30", "--apply", "--bot", "test_vpn_bot")
	if !strings.Contains(again.stdout, "nothing to do") || !strings.Contains(again.stdout, "unchanged 2") {
		t.Fatalf("second run:\n%s", again.stdout)
	}

	clash := importertest.NewClient("mallory", "10.8.0.5")
	other := filepath.Join(t.TempDir(), "clash.conf")
	if err := os.WriteFile(other, []byte(importertest.WgQuick(srvKey, "10.8.0.1/24", []importertest.Client{clash})), 0o600); err != nil {
		t.Fatal(err)
	}
	r := w.wgbot(t, "import", "--from", "wg-quick", other, "--days", "30", "--apply", "--bot", "test_vpn_bot")
	if r.code == 0 || !strings.Contains(r.stdout, "problem:") || !strings.Contains(r.stdout, "10.8.0.5 is held by peer") ||
		!strings.Contains(r.stderr, "import refused") {
		t.Fatalf("a clashing import: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if err := w.pool.QueryRow(t.Context(), `SELECT count(*) FROM peers`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("the refused import changed the peers: %d (%v)", n, err)
	}
}

// TestImportAdoptsDisabled: wgbot runs on the old tool's own wg0.conf,
// whose hand-made sections hold the clients wg-easy's wg0.json lists. After
// the import the enabled client is a managed peer and the disabled one
// has left the file (and so the device): disabled clients come in
// disabled.
func TestImportAdoptsDisabled(t *testing.T) {
	w := newOpWorld(t, "")
	srvKey, _ := wgtypes.GeneratePrivateKey()
	on, off := importertest.NewClient("on", "10.8.0.7"), importertest.NewClient("off", "10.8.0.8")
	off.Enabled = false
	if err := os.WriteFile(w.confPath, []byte(importertest.WgQuick(srvKey, "10.8.0.1/24", []importertest.Client{on, off})), 0o600); err != nil {
		t.Fatal(err)
	}
	src := importertest.WgEasyJSON(t, t.TempDir(), srvKey, []importertest.Client{on, off})
	w.ok(t, "import", "--from", "wg-easy", src, "--no-expiry", "--apply", "--bot", "test_vpn_bot")
	raw, _ := os.ReadFile(w.confPath)
	conf, err := wgconf.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	managed := conf.ManagedPeers()
	if len(managed) != 1 || managed[0].PublicKey != on.Public() || strings.Contains(string(raw), off.Public()) ||
		len(conf.UnmanagedPeers()) != 1 { // the site-to-site router stays hand-made
		t.Fatalf("wg0.conf after importing an enabled and a disabled client:\n%s", raw)
	}
	var status string
	if err := w.pool.QueryRow(t.Context(), `SELECT status FROM peers WHERE public_key = $1`, off.Public()).Scan(&status); err != nil || status != "disabled" {
		t.Fatalf("the disabled client: %q, %v", status, err)
	}
}
