// Package importer reads the clients of an existing WireGuard server from
// the tools that made it (a hand-written wg-quick file, wg-easy v14's
// wg0.json or v15's SQLite database, wireguard-ui's JSON database) into one
// neutral list, for `wgbot import`. It only reads: deciding what to create,
// what clashes and what to skip against the database is postgres.Import's.
package importer

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Sources `wgbot import --from` takes.
const (
	FromWgQuick     = "wg-quick"
	FromWgEasy      = "wg-easy"
	FromWireguardUI = "wireguard-ui"
)

// Client is one device of the old server.
type Client struct {
	Ref          string // where it was found, for the operator: "line 12", a client id
	Name         string
	PublicKey    string
	PrivateKey   string // "": unknown (a wg-quick file holds only the server's side)
	PresharedKey string // "": none
	IPv4         netip.Addr
	IPv6         netip.Addr // invalid: none
	// Keepalive is the server side's persistent keepalive the old server
	// gave the peer, in seconds (wg-easy and wireguard-ui set none: 0).
	// The imported peer keeps it, so the takeover changes nothing on the
	// device.
	Keepalive int
	Enabled   bool
	ExpiresAt *time.Time // nil: no expiry
	Note      string     // e.g. wireguard-ui's email
}

// Skipped is a client or section that cannot be imported, and why; it
// stays with the old tool (a hand-made wg0.conf peer stays hand-made).
type Skipped struct {
	Ref    string
	Name   string
	Reason string
}

// List is what a source holds.
type List struct {
	Source  string
	Clients []Client
	Skipped []Skipped
}

// Read reads path as the given source. wg-easy's source is a v14 wg0.json
// or a v15 SQLite database, told apart by the file's first bytes;
// wireguard-ui's is its database directory (the one holding clients/).
func Read(from, path string) (List, error) {
	switch from {
	case FromWgQuick:
		data, err := os.ReadFile(path)
		if err != nil {
			return List{}, err
		}
		return WgQuick(data)
	case FromWgEasy:
		data, err := os.ReadFile(path)
		if err != nil {
			return List{}, err
		}
		if strings.HasPrefix(string(data), sqliteMagic) {
			return WgEasySQLite(path)
		}
		return WgEasyJSON(data)
	case FromWireguardUI:
		return WireguardUI(path)
	}
	return List{}, fmt.Errorf("unknown source %q (want %s, %s or %s)", from, FromWgQuick, FromWgEasy, FromWireguardUI)
}

const sqliteMagic = "SQLite format 3\x00"

// client checks the keys and addresses every source gives as text and
// returns the client, or the reason it cannot be imported.
func client(ref, name, pub, priv, psk string, addrs []string) (Client, string) {
	c := Client{Ref: ref, Name: strings.TrimSpace(name), Enabled: true}
	k, err := wgtypes.ParseKey(strings.TrimSpace(pub))
	if err != nil {
		return c, "public key is not a WireGuard key"
	}
	c.PublicKey = k.String()
	if priv = strings.TrimSpace(priv); priv != "" {
		pk, err := wgtypes.ParseKey(priv)
		if err != nil {
			return c, "private key is not a WireGuard key"
		}
		if pk.PublicKey() != k {
			return c, "private key does not match the public key"
		}
		c.PrivateKey = pk.String()
	}
	if psk = strings.TrimSpace(psk); psk != "" {
		sk, err := wgtypes.ParseKey(psk)
		if err != nil {
			return c, "preshared key is not a WireGuard key"
		}
		if sk != (wgtypes.Key{}) {
			c.PresharedKey = sk.String()
		}
	}
	for _, a := range addrs {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return c, fmt.Sprintf("address %q is not an IP address", a)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		ip := p.Addr().Unmap()
		switch {
		case !p.IsSingleIP():
			return c, fmt.Sprintf("routes the network %s, not one address: wgbot manages single-address devices only", p)
		case ip.Is4() && !c.IPv4.IsValid():
			c.IPv4 = ip
		case ip.Is6() && !c.IPv6.IsValid():
			c.IPv6 = ip
		default:
			return c, "has more than one address per IP version"
		}
	}
	if !c.IPv4.IsValid() {
		return c, "has no IPv4 address"
	}
	return c, ""
}

// parseTime reads the timestamps the JavaScript tools write: ISO 8601
// from JSON.stringify, or SQLite's "YYYY-MM-DD HH:MM:SS", or a bare date.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("expiry %q is not a date", s)
}
