package device

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Peer is one peer as wgbot wants it on the device.
type Peer struct {
	PublicKey wgtypes.Key
	// PresharedKey is the zero Key when the peer has none.
	PresharedKey wgtypes.Key
	AllowedIPs   []netip.Prefix
	// Endpoint is set only for hand-made peers that wgbot dials; clients of
	// the VPN connect to us and have none.
	Endpoint *net.UDPAddr
	// PersistentKeepalive is applied in whole seconds, as WireGuard stores it.
	PersistentKeepalive time.Duration
}

// Changes is the smallest set of peer configurations that turns the device's
// peers into the desired ones. Each slice is sorted by public key.
type Changes struct {
	Add    []wgtypes.PeerConfig
	Update []wgtypes.PeerConfig
	Remove []wgtypes.PeerConfig
	// Unchanged counts desired peers already on the device as wanted.
	Unchanged int
}

// Empty reports whether the device already matches.
func (c Changes) Empty() bool {
	return len(c.Add) == 0 && len(c.Update) == 0 && len(c.Remove) == 0
}

// Config is the device configuration that applies the changes and nothing
// else: no private key, no listen port, no ReplacePeers.
//
// Removals go first so that a tunnel IP freed by a removed peer is free
// before a new or updated peer claims it; WireGuard moves an allowed IP to
// whichever peer was configured with it last.
func (c Changes) Config() wgtypes.Config {
	peers := make([]wgtypes.PeerConfig, 0, len(c.Remove)+len(c.Update)+len(c.Add))
	peers = append(peers, c.Remove...)
	peers = append(peers, c.Update...)
	peers = append(peers, c.Add...)
	return wgtypes.Config{Peers: peers}
}

// Diff compares the peers on a device with the desired peers. It touches
// nothing and returns the same Changes for the same input, whatever the order
// of either slice. If a public key appears twice in desired, the last entry
// wins; Sync refuses such input.
//
// A peer is updated only when its allowed IPs (as a set, masked), preshared
// key or keepalive differ. Its endpoint is set when the peer is added or when
// the device knows none; an existing endpoint is left alone because the device
// reports the address the peer last roamed from, not the configured one.
func Diff(current []wgtypes.Peer, desired []Peer) Changes {
	d := newDiffer(desired)
	for i := range current {
		d.see(&current[i])
	}
	p := d.plan()
	c := Changes{Update: p.update, Remove: p.remove, Unchanged: p.unchanged}
	for _, d := range p.add {
		c.Add = append(c.Add, addConfig(d))
	}
	return c
}

// plan is Diff's result with the added peers not yet turned into
// configurations: Sync turns them a batch at a time, since filling an
// empty device they are every peer (12 MB at 50,000 peers).
type plan struct {
	add            []*Peer
	update, remove []wgtypes.PeerConfig
	unchanged      int
}

func (p plan) result() Result {
	return Result{Added: len(p.add), Updated: len(p.update), Removed: len(p.remove), Unchanged: p.unchanged}
}

// configs yields the configurations in Config's order: removals, updates,
// additions.
func (p plan) configs(yield func(wgtypes.PeerConfig) bool) {
	for _, group := range [][]wgtypes.PeerConfig{p.remove, p.update} {
		for _, pc := range group {
			if !yield(pc) {
				return
			}
		}
	}
	for _, d := range p.add {
		if !yield(addConfig(d)) {
			return
		}
	}
}

// differ compares the device's peers, as they are read, with the desired
// ones: it holds no copy of the device, so a diff at 50,000 peers costs
// the desired set's index and the changes, not the device read whole.
type differ struct {
	want map[wgtypes.Key]*wanted
	p    plan
}

type wanted struct {
	peer *Peer
	seen bool // on the device
}

func newDiffer(desired []Peer) *differ {
	all := make([]wanted, len(desired))
	want := make(map[wgtypes.Key]*wanted, len(desired))
	for i := range desired {
		all[i].peer = &desired[i]
		want[desired[i].PublicKey] = &all[i]
	}
	return &differ{want: want}
}

// see takes one peer of the device. A device holds each key once; a key
// seen again (only a test's input can have one) is compared once.
func (d *differ) see(cur *wgtypes.Peer) {
	w, ok := d.want[cur.PublicKey]
	switch {
	case !ok:
		d.p.remove = append(d.p.remove, wgtypes.PeerConfig{PublicKey: cur.PublicKey, Remove: true})
	case w.seen:
	default:
		w.seen = true
		if pc, changed := updateConfig(cur, w.peer); changed {
			d.p.update = append(d.p.update, pc)
		} else {
			d.p.unchanged++
		}
	}
}

// plan returns the changes once every peer of the device was seen: the
// desired peers not on it are added.
func (d *differ) plan() plan {
	p := d.p
	for _, w := range d.want {
		if !w.seen {
			p.add = append(p.add, w.peer)
		}
	}
	// Maps iterate in random order, and the device in its own; sorting
	// makes the result, and so the order of operations on the device,
	// reproducible.
	slices.SortFunc(p.add, func(a, b *Peer) int { return bytes.Compare(a.PublicKey[:], b.PublicKey[:]) })
	for _, s := range [][]wgtypes.PeerConfig{p.update, p.remove} {
		slices.SortFunc(s, func(a, b wgtypes.PeerConfig) int {
			return bytes.Compare(a.PublicKey[:], b.PublicKey[:])
		})
	}
	return p
}

// addConfig sets every field explicitly, so that if the peer appears on the
// device between our read and our write (someone ran `wg set`), the result is
// still exactly the desired peer.
func addConfig(d *Peer) wgtypes.PeerConfig {
	psk := d.PresharedKey
	keepalive := d.PersistentKeepalive.Truncate(time.Second)
	return wgtypes.PeerConfig{
		PublicKey:                   d.PublicKey,
		PresharedKey:                &psk,
		Endpoint:                    d.Endpoint,
		PersistentKeepaliveInterval: &keepalive,
		ReplaceAllowedIPs:           true,
		AllowedIPs:                  toIPNets(canonicalPrefixes(nil, d.AllowedIPs)),
	}
}

// updateConfig carries only the fields that differ, with UpdateOnly so that
// a peer removed by hand meanwhile is not resurrected half-configured; the
// next sync adds it whole.
func updateConfig(cur *wgtypes.Peer, d *Peer) (wgtypes.PeerConfig, bool) {
	pc := wgtypes.PeerConfig{PublicKey: d.PublicKey, UpdateOnly: true}
	changed := false

	// Peers usually have one or two allowed IPs; stack buffers keep the
	// comparison of a thousand unchanged peers from allocating.
	var wantBuf, curBuf [4]netip.Prefix
	want := canonicalPrefixes(wantBuf[:0], d.AllowedIPs)
	if !slices.Equal(want, canonicalIPNets(curBuf[:0], cur.AllowedIPs)) {
		pc.ReplaceAllowedIPs = true
		pc.AllowedIPs = toIPNets(want)
		changed = true
	}
	if cur.PresharedKey != d.PresharedKey {
		psk := d.PresharedKey
		pc.PresharedKey = &psk
		changed = true
	}
	if keepalive := d.PersistentKeepalive.Truncate(time.Second); keepalive != cur.PersistentKeepaliveInterval {
		// A copy declared here escapes only when it is needed.
		k := keepalive
		pc.PersistentKeepaliveInterval = &k
		changed = true
	}
	if cur.Endpoint == nil && d.Endpoint != nil {
		pc.Endpoint = d.Endpoint
		changed = true
	}
	return pc, changed
}

// canonicalPrefixes appends the prefixes to out as the device stores them:
// masked, IPv4 not mapped into IPv6, sorted and without duplicates.
func canonicalPrefixes(out, in []netip.Prefix) []netip.Prefix {
	for _, p := range in {
		// Sync rejects invalid prefixes; Diff skips them rather than
		// sending the device a nil address.
		if p.IsValid() {
			out = append(out, canonicalPrefix(p))
		}
	}
	return sortUnique(out)
}

func canonicalIPNets(out []netip.Prefix, in []net.IPNet) []netip.Prefix {
	for _, n := range in {
		addr, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, bits := n.Mask.Size()
		if bits == 32 {
			addr = addr.Unmap()
		}
		out = append(out, canonicalPrefix(netip.PrefixFrom(addr, ones)))
	}
	return sortUnique(out)
}

func canonicalPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

func sortUnique(ps []netip.Prefix) []netip.Prefix {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(ps)
}

func toIPNets(ps []netip.Prefix) []net.IPNet {
	out := make([]net.IPNet, 0, len(ps))
	for _, p := range ps {
		out = append(out, net.IPNet{
			IP:   p.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		})
	}
	return out
}
