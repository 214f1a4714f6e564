package wgtest

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// QuickConfig is a wg-quick config split the way `wg-quick up` splits it:
// the part wg(8) understands and the keys wg-quick handles itself.
type QuickConfig struct {
	// WG is the config with wg-quick's own keys removed, ready for `wg setconf`.
	WG string
	// Addresses are the [Interface] Address values.
	Addresses []netip.Prefix
	// MTU is the [Interface] MTU, or "" when unset.
	MTU string
	// Routes are the AllowedIPs of every peer; wg-quick routes them into
	// the interface.
	Routes []netip.Prefix
}

// ParseQuick splits a wg-quick config, as a user of wgbot would import it,
// into what `wg setconf` takes and what wg-quick would do around it.
func ParseQuick(conf string) (QuickConfig, error) {
	var q QuickConfig
	var wg strings.Builder
	section := ""
	sc := bufio.NewScanner(strings.NewReader(conf))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			section = strings.ToLower(trimmed)
		}
		key, value, isKV := strings.Cut(trimmed, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if isKV && !strings.HasPrefix(trimmed, "#") {
			switch {
			case section == "[interface]" && strings.EqualFold(key, "Address"):
				ps, err := parsePrefixes(value)
				if err != nil {
					return QuickConfig{}, fmt.Errorf("line %d: Address: %w", n, err)
				}
				q.Addresses = append(q.Addresses, ps...)
			case section == "[interface]" && strings.EqualFold(key, "MTU"):
				q.MTU = value
			case section == "[peer]" && strings.EqualFold(key, "AllowedIPs"):
				ps, err := parsePrefixes(value)
				if err != nil {
					return QuickConfig{}, fmt.Errorf("line %d: AllowedIPs: %w", n, err)
				}
				q.Routes = append(q.Routes, ps...)
			}
			if section == "[interface]" && isQuickOnly(key) {
				continue
			}
		}
		wg.WriteString(line)
		wg.WriteString("\n")
	}
	if err := sc.Err(); err != nil {
		return QuickConfig{}, err
	}
	q.WG = wg.String()
	return q, nil
}

// isQuickOnly reports whether key is an [Interface] key that wg(8) rejects
// because only wg-quick knows it.
func isQuickOnly(key string) bool {
	switch strings.ToLower(key) {
	case "address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown", "saveconfig":
		return true
	}
	return false
}

// parsePrefixes reads a comma-separated list where a bare address means a
// single host, as wg-quick allows.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// QuickUp brings up device iface in namespace ns from a wg-quick config, the
// way a user's `wg-quick up` would: `wg setconf` with the stripped config,
// then addresses, MTU, link up and a route per allowed IP. Unlike wg-quick it
// routes a default route (0.0.0.0/0) plainly into the tunnel, without policy
// routing; that is safe in a test namespace because the peer's endpoint sits
// on a directly connected veth, whose more specific route wins.
func QuickUp(t testing.TB, ns, iface, conf string) {
	t.Helper()
	q, err := ParseQuick(conf)
	if err != nil {
		t.Fatalf("parse wg-quick config for %s: %v", iface, err)
	}
	path := filepath.Join(t.TempDir(), iface+".conf")
	if err := os.WriteFile(path, []byte(q.WG), 0o600); err != nil {
		t.Fatalf("write stripped config: %v", err)
	}
	Exec(t, ns, "wg", "setconf", iface, path)
	for _, a := range q.Addresses {
		Exec(t, ns, "ip", "address", "add", a.String(), "dev", iface)
	}
	if q.MTU != "" {
		Exec(t, ns, "ip", "link", "set", iface, "mtu", q.MTU)
	}
	Exec(t, ns, "ip", "link", "set", iface, "up")
	for _, r := range q.Routes {
		Exec(t, ns, "ip", "route", "replace", r.Masked().String(), "dev", iface)
	}
}
