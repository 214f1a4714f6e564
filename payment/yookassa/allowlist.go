package yookassa

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultIPRanges returns the addresses YooKassa documents as the sources of
// its notifications (yookassa.ru/developers/using-api/webhooks, checked
// 2026). It returns a fresh slice each time so no caller can alter another's.
func DefaultIPRanges() []string {
	return []string{
		"185.71.76.0/27",
		"185.71.77.0/27",
		"77.75.153.0/25",
		"77.75.156.11",
		"77.75.156.35",
		"77.75.154.128/25",
		"2a02:5180::/32",
	}
}

// IPAllowList holds the networks a notification may come from.
type IPAllowList struct {
	prefixes []netip.Prefix
}

// NewIPAllowList parses CIDR blocks and single addresses ("77.75.156.11" is
// taken as a /32). Every bad entry is reported at once. A block with host
// bits set, like "10.0.0.1/24", is refused rather than guessed at: it is
// usually a typo and the two readings allow very different sets.
func NewIPAllowList(entries []string) (*IPAllowList, error) {
	if len(entries) == 0 {
		// An empty list refuses every notification; that is a config mistake
		// to report at start-up, not at the first payment.
		return nil, errors.New("yookassa ip allow-list: no entries")
	}
	l := &IPAllowList{}
	var problems []string
	for _, e := range entries {
		p, err := parseAllowEntry(strings.TrimSpace(e))
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		l.prefixes = append(l.prefixes, p)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("yookassa ip allow-list: %s", strings.Join(problems, "; "))
	}
	return l, nil
}

// DefaultIPAllowList is the allow-list built from DefaultIPRanges.
func DefaultIPAllowList() *IPAllowList {
	l, err := NewIPAllowList(DefaultIPRanges())
	if err != nil {
		panic(err) // the built-in list is constant; a parse failure is a bug here
	}
	return l
}

func parseAllowEntry(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR block", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR block: %v", s, err)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		// ::ffff:1.2.3.0/120 means 1.2.3.0/24; store it as IPv4 so it
		// matches the unmapped addresses Allowed compares.
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// Allowed reports whether addr lies in one of the list's networks. An
// IPv4-mapped IPv6 address (::ffff:185.71.76.1, as a dual-stack socket may
// report it) is compared as the IPv4 address it is. The zero Addr and a nil
// list allow nothing.
func (l *IPAllowList) Allowed(addr netip.Addr) bool {
	if l == nil || !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range l.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ClientIP returns the address a request came from, for the allow-list.
//
// With trustProxyHeader empty (the default) it is the TCP peer, r.RemoteAddr,
// and headers are ignored: any client can write X-Forwarded-For, so honouring
// it by default would let anyone pass the allow-list.
//
// Behind a reverse proxy, name the header that proxy sets (X-Forwarded-For or
// X-Real-IP). ClientIP then takes the right-most address in it, because that
// is the one the trusted proxy appended from the connection it saw; every
// address left of it came from the client and may be forged. Several header
// lines count as one comma-separated list. A missing or unparsable header is
// an error, never a fallback to RemoteAddr. This is only sound if the proxy
// is the sole way to reach the webhook listener, and it must be exactly one
// proxy hop: behind a chain, the right-most entry is the inner proxy.
func ClientIP(r *http.Request, trustProxyHeader string) (netip.Addr, error) {
	if trustProxyHeader == "" {
		a, err := parseHostMaybePort(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("client ip from remote address %q: %w", r.RemoteAddr, err)
		}
		return a, nil
	}
	values := r.Header.Values(trustProxyHeader)
	last := ""
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if p := strings.TrimSpace(part); p != "" {
				last = p
			}
		}
	}
	if last == "" {
		return netip.Addr{}, fmt.Errorf("client ip: header %s is missing or empty", trustProxyHeader)
	}
	a, err := parseHostMaybePort(last)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client ip from header %s: %q: %w", trustProxyHeader, last, err)
	}
	return a, nil
}

// parseHostMaybePort accepts "1.2.3.4", "1.2.3.4:80", "2001:db8::1",
// "[2001:db8::1]" and "[2001:db8::1]:80", and returns the address unmapped.
func parseHostMaybePort(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, errors.New("not an IP address")
}
