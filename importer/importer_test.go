package importer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/importer"
	"wgbot/importer/importertest"
)

func TestWgQuickNamesAndSkips(t *testing.T) {
	srv, _ := wgtypes.GeneratePrivateKey()
	a, b := importertest.NewClient("alice", "10.8.0.2"), importertest.NewClient("bob", "10.8.0.3")
	a.IP6 = "fd00::2"
	b.Keepalive = 21
	conf := importertest.WgQuick(srv, "10.8.0.1/24", []importertest.Client{a, b})
	conf += "\n# BEGIN_PEER carol\n[Peer]\nPublicKey = " + mustKey(t).PublicKey().String() + "\nAllowedIPs = fd00::4/128\n"
	conf += "\n[Peer]\nPublicKey = " + mustKey(t).PublicKey().String() + "\nAllowedIPs = 10.8.0.5/32, 10.8.0.6/32\n"
	l, err := importer.WgQuick([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Clients) != 2 || l.Clients[0].Name != "alice" || l.Clients[1].Name != "bob" {
		t.Fatalf("clients: %+v", l.Clients)
	}
	if c := l.Clients[0]; c.IPv6.String() != "fd00::2" || c.PrivateKey != "" || c.PresharedKey != a.PSK.String() || !c.Enabled || c.ExpiresAt != nil {
		t.Fatalf("alice: %+v", c)
	}
	if l.Clients[1].Keepalive != 21 {
		t.Fatalf("bob's keepalive: %d", l.Clients[1].Keepalive)
	}
	reasons := map[string]string{}
	for _, s := range l.Skipped {
		reasons[s.Name] = s.Reason
	}
	if !strings.Contains(reasons["office router (site-to-site)"], "routes the network") ||
		!strings.Contains(reasons["carol"], "no IPv4 address") || !strings.Contains(reasons[""], "more than one address") {
		t.Fatalf("skipped: %+v", l.Skipped)
	}
	if _, err := importer.WgQuick([]byte("[Interface]\nPrivateKey\n")); err == nil {
		t.Fatal("a file wg-quick would reject must be refused")
	}
}

func TestWgEasyFormats(t *testing.T) {
	srv, _ := wgtypes.GeneratePrivateKey()
	c := importertest.NewClient("anna", "10.8.0.2")
	c.IP6 = "fdcc:ad94:bacf:61a4::cafe:2"
	c.Expires = time.Date(2030, 1, 2, 23, 59, 59, 0, time.UTC)
	d := importertest.NewClient("dmitri", "10.8.0.3")
	d.IP6, d.Enabled = "fdcc:ad94:bacf:61a4::cafe:3", false
	dir := t.TempDir()
	for _, path := range []string{importertest.WgEasyJSON(t, dir, srv, []importertest.Client{c, d}),
		importertest.WgEasySQLite(t, dir, srv, []importertest.Client{c, d})} {
		l, err := importer.Read(importer.FromWgEasy, path)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Clients) != 2 || len(l.Skipped) != 0 {
			t.Fatalf("%s: %+v %+v", filepath.Base(path), l.Clients, l.Skipped)
		}
		got := l.Clients[0]
		if got.PrivateKey != c.Key.String() || got.PublicKey != c.Public() || got.IPv4.String() != c.IP ||
			got.ExpiresAt == nil || !got.ExpiresAt.Equal(c.Expires) || l.Clients[1].Enabled {
			t.Fatalf("%s: %+v", filepath.Base(path), l.Clients)
		}
	}
	// A private key that does not belong to the public key is refused.
	bad := importertest.NewClient("eve", "10.8.0.4")
	bad.Key = mustKey(t)
	path := importertest.WgEasyJSON(t, t.TempDir(), srv, []importertest.Client{bad})
	data, _ := os.ReadFile(path)
	other := mustKey(t)
	os.WriteFile(path, []byte(strings.Replace(string(data), bad.Key.String(), other.String(), 1)), 0o600)
	l, err := importer.Read(importer.FromWgEasy, path)
	if err != nil || len(l.Skipped) != 1 || !strings.Contains(l.Skipped[0].Reason, "does not match") {
		t.Fatalf("a mismatched private key: %+v %v", l, err)
	}
	if _, err := importer.Read(importer.FromWgEasy, filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing file must fail")
	}
	if _, err := importer.Read("pivpn", path); err == nil {
		t.Fatal("an unknown source must fail")
	}
}

func TestWireguardUI(t *testing.T) {
	c := importertest.NewClient("Office PC", "10.252.1.2")
	c.Email, c.PSK = "pc@example.com", wgtypes.Key{}
	dir := importertest.WireguardUI(t, t.TempDir(), []importertest.Client{c})
	for _, p := range []string{dir, filepath.Join(dir, "clients")} {
		l, err := importer.Read(importer.FromWireguardUI, p)
		if err != nil || len(l.Clients) != 1 {
			t.Fatalf("%s: %+v %v", p, l, err)
		}
		if got := l.Clients[0]; got.Note != "pc@example.com" || got.PresharedKey != "" || got.PrivateKey != c.Key.String() {
			t.Fatalf("%+v", got)
		}
	}
	if _, err := importer.Read(importer.FromWireguardUI, filepath.Join(t.TempDir(), "nothing")); err == nil {
		t.Fatal("a missing directory must fail")
	}
}

func mustKey(t *testing.T) wgtypes.Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
