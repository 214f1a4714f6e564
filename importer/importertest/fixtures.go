// Package importertest writes the files of the tools `wgbot import` reads,
// in each tool's own format, for tests: a hand-written wg-quick server
// file, wg-easy v14's wg0.json, wg-easy v15's SQLite database (drizzle's
// schema: clients_table and the tables it references) and wireguard-ui's
// db/clients/*.json.
package importertest

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	_ "modernc.org/sqlite" // the same pure-Go driver the importer reads with
)

// Client is one client of the old server.
type Client struct {
	Name      string
	Key       wgtypes.Key // the client's private key
	PSK       wgtypes.Key // zero: none
	IP        string      // "10.66.0.5"
	IP6       string      // "" : none
	Enabled   bool
	Expires   time.Time // zero: none
	Email     string
	Keepalive int
}

// NewClient is an enabled client with fresh keys.
func NewClient(name, ip string) Client {
	k, _ := wgtypes.GeneratePrivateKey()
	psk, _ := wgtypes.GenerateKey()
	return Client{Name: name, Key: k, PSK: psk, IP: ip, Enabled: true}
}

// Public is the client's public key as text.
func (c Client) Public() string { return c.Key.PublicKey().String() }

func (c Client) psk() string {
	if c.PSK == (wgtypes.Key{}) {
		return ""
	}
	return c.PSK.String()
}

// WgQuick is a hand-made wg-quick server file: an [Interface] with
// PostUp/PostDown firewall rules and comments, each client a [Peer] named
// by the comment above it, and a site-to-site peer routing a network
// (which import skips).
func WgQuick(serverKey wgtypes.Key, address string, clients []Client) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# /etc/wireguard/wg0.conf, kept by hand
[Interface]
Address = %s
ListenPort = 51820
PrivateKey = %s
PostUp = iptables -A FORWARD -i %%i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
PostDown = iptables -D FORWARD -i %%i -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE
`, address, serverKey)
	for i, c := range clients {
		if i%2 == 0 {
			fmt.Fprintf(&b, "\n# %s\n", c.Name)
		} else {
			fmt.Fprintf(&b, "\n### Client %s\n", c.Name)
		}
		fmt.Fprintf(&b, "[Peer]\nPublicKey = %s\n", c.Public())
		if psk := c.psk(); psk != "" {
			fmt.Fprintf(&b, "PresharedKey = %s\n", psk)
		}
		allowed := c.IP + "/32"
		if c.IP6 != "" {
			allowed += ", " + c.IP6 + "/128"
		}
		fmt.Fprintf(&b, "AllowedIPs = %s # the phone\n", allowed)
		if c.Keepalive > 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", c.Keepalive)
		}
	}
	office, _ := wgtypes.GeneratePrivateKey()
	fmt.Fprintf(&b, "\n# office router (site-to-site)\n[Peer]\nPublicKey = %s\nAllowedIPs = 192.168.50.0/24\nEndpoint = 203.0.113.7:51820\n", office.PublicKey())
	return b.String()
}

// WgEasyJSON writes wg-easy v14's wg0.json into dir and returns its path.
func WgEasyJSON(t testing.TB, dir string, serverKey wgtypes.Key, clients []Client) string {
	t.Helper()
	type client struct {
		ID           string  `json:"id"`
		Name         string  `json:"name"`
		Address      string  `json:"address"`
		PrivateKey   string  `json:"privateKey"`
		PublicKey    string  `json:"publicKey"`
		PreSharedKey string  `json:"preSharedKey"`
		CreatedAt    string  `json:"createdAt"`
		UpdatedAt    string  `json:"updatedAt"`
		ExpiredAt    *string `json:"expiredAt"`
		Enabled      bool    `json:"enabled"`
	}
	doc := struct {
		Server struct {
			PrivateKey string `json:"privateKey"`
			PublicKey  string `json:"publicKey"`
			Address    string `json:"address"`
		} `json:"server"`
		Clients map[string]client `json:"clients"`
	}{Clients: map[string]client{}}
	doc.Server.PrivateKey, doc.Server.PublicKey, doc.Server.Address = serverKey.String(), serverKey.PublicKey().String(), "10.8.0.1"
	for i, c := range clients {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i+1, i+1)
		wc := client{ID: id, Name: c.Name, Address: c.IP, PrivateKey: c.Key.String(), PublicKey: c.Public(), PreSharedKey: c.psk(),
			CreatedAt: "2024-03-01T10:00:00.000Z", UpdatedAt: "2024-03-02T10:00:00.000Z", Enabled: c.Enabled}
		if !c.Expires.IsZero() {
			s := c.Expires.UTC().Format("2006-01-02T15:04:05.000Z")
			wc.ExpiredAt = &s
		}
		doc.Clients[id] = wc
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "wg0.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wgEasySchema is wg-easy v15's tables as its drizzle migrations create
// them (the columns the client rows need, and the tables they reference).
var wgEasySchema = []string{
	`CREATE TABLE users_table (
		id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
		username text NOT NULL,
		password text NOT NULL,
		email text,
		name text NOT NULL,
		role integer NOT NULL,
		totp text,
		enabled integer NOT NULL,
		created_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
		updated_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL)`,
	`CREATE UNIQUE INDEX users_table_username_unique ON users_table (username)`,
	`CREATE TABLE interfaces_table (
		name text PRIMARY KEY NOT NULL,
		device text NOT NULL,
		port integer NOT NULL,
		private_key text NOT NULL,
		public_key text NOT NULL,
		ipv4_cidr text NOT NULL,
		ipv6_cidr text NOT NULL,
		mtu integer NOT NULL,
		enabled integer NOT NULL,
		created_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
		updated_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL)`,
	`CREATE TABLE clients_table (
		id integer PRIMARY KEY AUTOINCREMENT NOT NULL,
		user_id integer NOT NULL,
		name text NOT NULL,
		ipv4_address text NOT NULL,
		ipv6_address text NOT NULL,
		pre_up text DEFAULT '' NOT NULL,
		post_up text DEFAULT '' NOT NULL,
		pre_down text DEFAULT '' NOT NULL,
		post_down text DEFAULT '' NOT NULL,
		private_key text NOT NULL,
		public_key text NOT NULL,
		pre_shared_key text NOT NULL,
		expires_at text,
		allowed_ips text,
		server_allowed_ips text NOT NULL,
		persistent_keepalive integer NOT NULL,
		mtu integer NOT NULL,
		dns text,
		enabled integer NOT NULL,
		created_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
		updated_at text DEFAULT (CURRENT_TIMESTAMP) NOT NULL,
		j_c integer, j_min integer, j_max integer, i1 text, i2 text, i3 text, i4 text, i5 text,
		FOREIGN KEY (user_id) REFERENCES users_table(id) ON UPDATE cascade ON DELETE restrict)`,
	`CREATE UNIQUE INDEX clients_table_ipv4_address_unique ON clients_table (ipv4_address)`,
	`CREATE UNIQUE INDEX clients_table_ipv6_address_unique ON clients_table (ipv6_address)`,
}

// WgEasySQLite writes wg-easy v15's database into dir and returns its
// path. Clients without an IPv6 address get one of wg-easy's default
// prefix (the column is NOT NULL there); callers whose server has no IPv6
// prefix set IP6 themselves or expect the import to refuse.
func WgEasySQLite(t testing.TB, dir string, serverKey wgtypes.Key, clients []Client) string {
	t.Helper()
	path := filepath.Join(dir, "wg-easy.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range wgEasySchema {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("wg-easy schema: %v", err)
		}
	}
	if _, err := db.Exec(`INSERT INTO users_table (username, password, name, role, enabled) VALUES ('admin', '$argon2id$x', 'Admin', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO interfaces_table (name, device, port, private_key, public_key, ipv4_cidr, ipv6_cidr, mtu, enabled)
		VALUES ('wg0', 'eth0', 51820, ?, ?, '10.8.0.0/24', 'fdcc:ad94:bacf:61a4::cafe:0/112', 1420, 1)`,
		serverKey.String(), serverKey.PublicKey().String()); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		var expires any
		if !c.Expires.IsZero() {
			expires = c.Expires.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		if _, err := db.Exec(`INSERT INTO clients_table (user_id, name, ipv4_address, ipv6_address, private_key, public_key, pre_shared_key,
				expires_at, allowed_ips, server_allowed_ips, persistent_keepalive, mtu, dns, enabled)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?, NULL, '[]', 0, 1420, NULL, ?)`,
			c.Name, c.IP, c.IP6, c.Key.String(), c.Public(), c.psk(), expires, c.Enabled); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// WireguardUI writes wireguard-ui's database directory (db/clients/<id>.json
// and db/server/) under dir and returns the db directory.
func WireguardUI(t testing.TB, dir string, clients []Client) string {
	t.Helper()
	db := filepath.Join(dir, "db")
	for _, sub := range []string{"clients", "server", "users"} {
		if err := os.MkdirAll(filepath.Join(db, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(db, "server", "interfaces.json"),
		[]byte(`{"addresses":["10.252.1.0/24"],"listen_port":51820,"updated_at":"2024-03-01T10:00:00Z","post_up":"","post_down":""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		id := fmt.Sprintf("cn%017d", i+1)
		allocated := []string{c.IP + "/32"}
		if c.IP6 != "" {
			allocated = append(allocated, c.IP6+"/128")
		}
		doc := map[string]any{
			"id": id, "private_key": c.Key.String(), "public_key": c.Public(), "preshared_key": c.psk(),
			"name": c.Name, "email": c.Email, "allocated_ips": allocated, "allowed_ips": []string{"0.0.0.0/0"},
			"extra_allowed_ips": []string{}, "endpoint": "", "additional_notes": "", "use_server_dns": true, "enabled": c.Enabled,
			"created_at": "2024-03-01T10:00:00.000000000Z", "updated_at": "2024-03-02T10:00:00.000000000Z",
		}
		data, err := json.MarshalIndent(doc, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(db, "clients", id+".json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
