package wgconf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// maxIDLen bounds a managed peer's id; a database id or a UUID fits easily.
const maxIDLen = 128

// checkID accepts ids that survive the marker line unchanged: no white
// space, no "#", nothing a later parse could read differently.
func checkID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("longer than %d bytes", maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return errors.New("may contain only letters, digits, '.', '_', '-' and ':'")
		}
	}
	return nil
}

// checkKey accepts a WireGuard key in the form wg(8) prints: 44 characters
// of standard base64 for 32 bytes. The alphabet is checked first because Go's
// decoder skips "\r" and "\n", which must never reach a rendered line. The
// error never includes the key.
func checkKey(s string) error {
	_, err := parseKey(s)
	return err
}

func parseKey(s string) (wgtypes.Key, error) {
	var src [44]byte // base64.StdEncoding.EncodedLen(wgtypes.KeyLen)
	if len(s) != len(src) {
		return wgtypes.Key{}, fmt.Errorf("want %d base64 characters, got %d", len(src), len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return wgtypes.Key{}, errors.New("not base64")
		}
	}
	// Decoding from and into arrays keeps this free of allocations; it runs
	// for every peer of every parse.
	copy(src[:], s)
	var dst [wgtypes.KeyLen + 1]byte
	n, err := base64.StdEncoding.Decode(dst[:], src[:])
	if err != nil || n != wgtypes.KeyLen {
		return wgtypes.Key{}, errors.New("not a base64-encoded 32-byte key")
	}
	return wgtypes.Key(dst[:wgtypes.KeyLen]), nil
}

// decodeKey returns the key's bytes, so that two spellings of one key count
// as the same. It expects a checked key.
func decodeKey(s string) wgtypes.Key {
	k, _ := parseKey(s)
	return k
}

// checkEndpoint accepts host:port or [ipv6]:port. It refuses white space,
// control characters and "#", "," and "=", which would change the meaning of
// the rendered line.
func checkEndpoint(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '#' || c == ',' || c == '=' {
			return fmt.Errorf("%q contains a forbidden character", s)
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want host:port or [ipv6]:port", s)
	}
	if host == "" {
		return fmt.Errorf("%q: missing host", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", s)
	}
	return nil
}

func parseUint16(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number from 0 to 65535", s)
	}
	return int(n), nil
}

// parseFwMark accepts what wg(8) does: "off", decimal or 0x hexadecimal.
func parseFwMark(s string) (uint32, error) {
	if s == "off" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not off or a 32-bit number", s)
	}
	return uint32(n), nil
}

// parseBool accepts what wg-quick does for SaveConfig.
func parseBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither true nor false", s)
}

// appendList appends the items of a comma-separated list. An empty value
// adds nothing; an empty item between commas is an error, as in wg(8).
func appendList(list []string, value string) ([]string, error) {
	err := forEachItem(value, func(item string) error {
		list = append(list, item)
		return nil
	})
	return list, err
}

// appendPrefixes appends a comma-separated list of addresses or prefixes.
// A bare address means a single host (/32 or /128), as in wg(8).
func appendPrefixes(list []netip.Prefix, value string) ([]netip.Prefix, error) {
	err := forEachItem(value, func(item string) error {
		p, err := parsePrefix(item)
		list = append(list, p)
		return err
	})
	return list, err
}

func forEachItem(value string, fn func(item string) error) error {
	if value == "" {
		return nil
	}
	for item := range strings.SplitSeq(value, ",") {
		item = trimSpace(item)
		if item == "" {
			return errors.New("empty item in comma-separated list")
		}
		if err := fn(item); err != nil {
			return err
		}
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP prefix", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
