package device_test

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/wireguard/device"
)

// key returns a fixed, readable key: every byte is b.
func key(b byte) wgtypes.Key {
	var k wgtypes.Key
	for i := range k {
		k[i] = b
	}
	return k
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// ipnets builds allowed IPs the way wgctrl reports them; v4in16 mimics the
// 16-byte IPv4 form some parsers produce.
func ipnets(ss ...string) []net.IPNet {
	var out []net.IPNet
	for _, s := range ss {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			panic(err)
		}
		out = append(out, *n)
	}
	return out
}

func v4in16(s string) net.IPNet {
	n := ipnets(s)[0]
	n.IP = n.IP.To16()
	return n
}

func ptr[T any](v T) *T { return &v }

func TestDiff(t *testing.T) {
	endpoint := &net.UDPAddr{IP: net.ParseIP("198.18.0.9"), Port: 51820}
	roamed := &net.UDPAddr{IP: net.ParseIP("198.18.7.7"), Port: 40000}

	tests := []struct {
		name    string
		current []wgtypes.Peer
		desired []device.Peer
		want    device.Changes
	}{
		{
			name: "nothing on either side",
		},
		{
			name:    "new peer is added with every field set",
			desired: []device.Peer{{PublicKey: key(1), PresharedKey: key(9), AllowedIPs: prefixes("10.66.0.2/32"), PersistentKeepalive: 25 * time.Second}},
			want: device.Changes{Add: []wgtypes.PeerConfig{{
				PublicKey:                   key(1),
				PresharedKey:                ptr(key(9)),
				PersistentKeepaliveInterval: ptr(25 * time.Second),
				ReplaceAllowedIPs:           true,
				AllowedIPs:                  ipnets("10.66.0.2/32"),
			}}},
		},
		{
			name:    "new peer without preshared key clears it, in case the peer appeared meanwhile",
			desired: []device.Peer{{PublicKey: key(1), AllowedIPs: prefixes("10.66.0.2/32"), Endpoint: endpoint}},
			want: device.Changes{Add: []wgtypes.PeerConfig{{
				PublicKey:                   key(1),
				PresharedKey:                ptr(wgtypes.Key{}),
				Endpoint:                    endpoint,
				PersistentKeepaliveInterval: ptr(time.Duration(0)),
				ReplaceAllowedIPs:           true,
				AllowedIPs:                  ipnets("10.66.0.2/32"),
			}}},
		},
		{
			name: "equal peer is left alone whatever the form of its allowed IPs or its traffic",
			current: []wgtypes.Peer{{
				PublicKey:                   key(1),
				PresharedKey:                key(9),
				Endpoint:                    roamed,
				PersistentKeepaliveInterval: 25 * time.Second,
				LastHandshakeTime:           time.Unix(1700000000, 0),
				ReceiveBytes:                1234,
				AllowedIPs:                  append([]net.IPNet{v4in16("10.66.0.0/24")}, ipnets("fd00::2/128", "10.66.1.2/32")...),
			}},
			desired: []device.Peer{{
				PublicKey:           key(1),
				PresharedKey:        key(9),
				Endpoint:            endpoint,
				PersistentKeepalive: 25*time.Second + 300*time.Millisecond,
				// Unordered, unmasked, 4-in-6 and duplicated: all the same set.
				AllowedIPs: prefixes("10.66.1.2/32", "fd00::2/128", "10.66.0.7/24", "::ffff:10.66.1.2/128"),
			}},
			want: device.Changes{Unchanged: 1},
		},
		{
			name:    "changed allowed IPs replace the old ones and nothing else",
			current: []wgtypes.Peer{{PublicKey: key(1), PresharedKey: key(9), AllowedIPs: ipnets("10.66.0.2/32")}},
			desired: []device.Peer{{PublicKey: key(1), PresharedKey: key(9), AllowedIPs: prefixes("10.66.0.3/32")}},
			want: device.Changes{Update: []wgtypes.PeerConfig{{
				PublicKey:         key(1),
				UpdateOnly:        true,
				ReplaceAllowedIPs: true,
				AllowedIPs:        ipnets("10.66.0.3/32"),
			}}},
		},
		{
			name:    "all allowed IPs taken away",
			current: []wgtypes.Peer{{PublicKey: key(1), AllowedIPs: ipnets("10.66.0.2/32")}},
			desired: []device.Peer{{PublicKey: key(1)}},
			want: device.Changes{Update: []wgtypes.PeerConfig{{
				PublicKey:         key(1),
				UpdateOnly:        true,
				ReplaceAllowedIPs: true,
				AllowedIPs:        []net.IPNet{},
			}}},
		},
		{
			name:    "changed preshared key is the only field sent",
			current: []wgtypes.Peer{{PublicKey: key(1), PresharedKey: key(8), AllowedIPs: ipnets("10.66.0.2/32")}},
			desired: []device.Peer{{PublicKey: key(1), PresharedKey: key(9), AllowedIPs: prefixes("10.66.0.2/32")}},
			want: device.Changes{Update: []wgtypes.PeerConfig{{
				PublicKey:    key(1),
				UpdateOnly:   true,
				PresharedKey: ptr(key(9)),
			}}},
		},
		{
			name:    "dropped preshared key is cleared",
			current: []wgtypes.Peer{{PublicKey: key(1), PresharedKey: key(8), AllowedIPs: ipnets("10.66.0.2/32")}},
			desired: []device.Peer{{PublicKey: key(1), AllowedIPs: prefixes("10.66.0.2/32")}},
			want: device.Changes{Update: []wgtypes.PeerConfig{{
				PublicKey:    key(1),
				UpdateOnly:   true,
				PresharedKey: ptr(wgtypes.Key{}),
			}}},
		},
		{
			name:    "changed keepalive",
			current: []wgtypes.Peer{{PublicKey: key(1), PersistentKeepaliveInterval: 25 * time.Second}},
			desired: []device.Peer{{PublicKey: key(1)}},
			want: device.Changes{Update: []wgtypes.PeerConfig{{
				PublicKey:                   key(1),
				UpdateOnly:                  true,
				PersistentKeepaliveInterval: ptr(time.Duration(0)),
			}}},
		},
		{
			name:    "endpoint is set when the device has none",
			current: []wgtypes.Peer{{PublicKey: key(1)}},
			desired: []device.Peer{{PublicKey: key(1), Endpoint: endpoint}},
			want: device.Changes{Update: []wgtypes.PeerConfig{{
				PublicKey:  key(1),
				UpdateOnly: true,
				Endpoint:   endpoint,
			}}},
		},
		{
			name:    "peers not desired are removed",
			current: []wgtypes.Peer{{PublicKey: key(3)}, {PublicKey: key(1)}, {PublicKey: key(2)}},
			desired: []device.Peer{{PublicKey: key(2)}},
			want: device.Changes{
				Remove:    []wgtypes.PeerConfig{{PublicKey: key(1), Remove: true}, {PublicKey: key(3), Remove: true}},
				Unchanged: 1,
			},
		},
		{
			name:    "last of two entries with one key wins",
			desired: []device.Peer{{PublicKey: key(1), AllowedIPs: prefixes("10.66.0.2/32")}, {PublicKey: key(1), AllowedIPs: prefixes("10.66.0.3/32")}},
			want: device.Changes{Add: []wgtypes.PeerConfig{{
				PublicKey:                   key(1),
				PresharedKey:                ptr(wgtypes.Key{}),
				PersistentKeepaliveInterval: ptr(time.Duration(0)),
				ReplaceAllowedIPs:           true,
				AllowedIPs:                  ipnets("10.66.0.3/32"),
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := device.Diff(tt.current, tt.desired)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDiffDeterministic shuffles both inputs and expects the same changes,
// each list sorted by key, every time.
func TestDiffDeterministic(t *testing.T) {
	var current []wgtypes.Peer
	var desired []device.Peer
	for i := range 60 {
		k := key(byte(i + 1))
		switch i % 3 {
		case 0: // on the device only: removed
			current = append(current, wgtypes.Peer{PublicKey: k})
		case 1: // desired only: added
			desired = append(desired, device.Peer{PublicKey: k})
		case 2: // on both, with a different IP: updated
			current = append(current, wgtypes.Peer{PublicKey: k, AllowedIPs: ipnets("10.66.0.1/32")})
			desired = append(desired, device.Peer{PublicKey: k, AllowedIPs: prefixes("10.66.0.2/32")})
		}
	}
	want := device.Diff(current, desired)
	if len(want.Add) != 20 || len(want.Update) != 20 || len(want.Remove) != 20 {
		t.Fatalf("Diff = %s, want 20 of each", want.Result())
	}
	for _, s := range [][]wgtypes.PeerConfig{want.Add, want.Update, want.Remove} {
		for i := 1; i < len(s); i++ {
			if s[i-1].PublicKey[0] >= s[i].PublicKey[0] {
				t.Fatalf("changes not sorted by key: %v before %v", s[i-1].PublicKey, s[i].PublicKey)
			}
		}
	}
	for range 20 {
		rand.Shuffle(len(current), func(i, j int) { current[i], current[j] = current[j], current[i] })
		rand.Shuffle(len(desired), func(i, j int) { desired[i], desired[j] = desired[j], desired[i] })
		if diff := cmp.Diff(want, device.Diff(current, desired)); diff != "" {
			t.Fatalf("Diff changed with input order (-first +now):\n%s", diff)
		}
	}
}

func TestChangesConfig(t *testing.T) {
	c := device.Changes{
		Add:    []wgtypes.PeerConfig{{PublicKey: key(1)}},
		Update: []wgtypes.PeerConfig{{PublicKey: key(2), UpdateOnly: true}},
		Remove: []wgtypes.PeerConfig{{PublicKey: key(3), Remove: true}},
	}
	// Removals first, so a tunnel IP freed by a removed peer is free before
	// an added or updated peer claims it.
	want := wgtypes.Config{Peers: []wgtypes.PeerConfig{
		{PublicKey: key(3), Remove: true},
		{PublicKey: key(2), UpdateOnly: true},
		{PublicKey: key(1)},
	}}
	if diff := cmp.Diff(want, c.Config()); diff != "" {
		t.Errorf("Config (-want +got):\n%s", diff)
	}
	if c.Empty() {
		t.Error("Empty() = true for changes with peers")
	}
	if !(device.Changes{Unchanged: 5}).Empty() {
		t.Error("Empty() = false for changes with only unchanged peers")
	}
}

// A key listed twice among the device's peers (no device does that; a
// caller's input can) is compared once and never removed.
func TestDiffDuplicateCurrent(t *testing.T) {
	cur := wgtypes.Peer{PublicKey: key(1), AllowedIPs: ipnets("10.0.0.2/32")}
	c := device.Diff([]wgtypes.Peer{cur, cur}, []device.Peer{{PublicKey: key(1), AllowedIPs: prefixes("10.0.0.2/32")}})
	if !c.Empty() || c.Unchanged != 1 {
		t.Errorf("Diff = %+v, want one unchanged peer and nothing to do", c)
	}
}
