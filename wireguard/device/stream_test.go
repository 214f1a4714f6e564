package device

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/wireguard/wgtest"
)

// clone copies a streamed peer out of the buffers the stream reuses.
func clone(p *wgtypes.Peer) wgtypes.Peer {
	c := *p
	c.AllowedIPs = nil
	for _, n := range p.AllowedIPs {
		c.AllowedIPs = append(c.AllowedIPs, net.IPNet{IP: slices.Clone(n.IP), Mask: slices.Clone(n.Mask)})
	}
	if p.Endpoint != nil {
		e := *p.Endpoint
		e.IP = slices.Clone(e.IP)
		c.Endpoint = &e
	}
	return c
}

func byKey(a, b wgtypes.Peer) int { return bytes.Compare(a.PublicKey[:], b.PublicKey[:]) }

// A userspace device streamed peer by peer reads the same as wgctrl reads
// it whole: keys, endpoints of both families, keepalives and every kind of
// allowed IP, for peers with and without each.
func TestStreamMatchesWgctrl(t *testing.T) {
	wgtest.RequireTools(t)
	ns, iface := wgtest.Netns(t, "str"), wgtest.UniqueName(t, "wgs")
	wgtest.StartWireGuardGo(t, ns, iface)
	raw, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctl, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()

	priv, _ := wgtypes.GeneratePrivateKey()
	port, mark := 51820, 7
	cfg := wgtypes.Config{PrivateKey: &priv, ListenPort: &port, FirewallMark: &mark}
	for i := range 300 {
		k, _ := wgtypes.GenerateKey()
		pc := wgtypes.PeerConfig{PublicKey: k, AllowedIPs: []net.IPNet{
			{IP: net.IPv4(10, 1, byte(i>>8), byte(i)).To4(), Mask: net.CIDRMask(32, 32)},
			{IP: net.ParseIP(fmt.Sprintf("fd00::%x", i+1)), Mask: net.CIDRMask(128, 128)},
		}}
		switch i % 4 {
		case 0:
			psk, _ := wgtypes.GenerateKey()
			keepalive := time.Duration(i%60+1) * time.Second
			pc.PresharedKey, pc.PersistentKeepaliveInterval = &psk, &keepalive
			pc.Endpoint = &net.UDPAddr{IP: net.IPv4(198, 18, 0, byte(i)), Port: 40000 + i}
		case 1:
			pc.Endpoint = &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 51820}
			pc.AllowedIPs = append(pc.AllowedIPs, net.IPNet{IP: net.IPv4(172, 16, byte(i), 0).To4(), Mask: net.CIDRMask(20, 32)})
		case 2:
			pc.AllowedIPs = nil
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	if err := raw.ConfigureDevice(iface, cfg); err != nil {
		t.Fatal(err)
	}

	want, err := raw.Device(iface)
	if err != nil {
		t.Fatal(err)
	}
	var got []wgtypes.Peer
	dev, err := Peers(ctl, iface, func(p *wgtypes.Peer) { got = append(got, clone(p)) })
	if err != nil {
		t.Fatal(err)
	}
	if dev.PublicKey != priv.PublicKey() || dev.ListenPort != port || dev.FirewallMark != mark || dev.Type != wgtypes.Userspace || dev.Peers != nil {
		t.Errorf("device %s: key %s, port %d, fwmark %d, type %v, %d peers kept; want key %s, port %d, fwmark %d, userspace, none kept",
			iface, dev.PublicKey, dev.ListenPort, dev.FirewallMark, dev.Type, len(dev.Peers), priv.PublicKey(), port, mark)
	}
	slices.SortFunc(got, byKey)
	slices.SortFunc(want.Peers, byKey)
	if len(got) != len(want.Peers) {
		t.Fatalf("streamed %d peers, wgctrl read %d", len(got), len(want.Peers))
	}
	for i := range got {
		if g, w := describe(got[i]), describe(want.Peers[i]); g != w {
			t.Errorf("peer %d:\nstreamed %s\nwgctrl   %s", i, g, w)
		}
	}

	// A missing device reads as wgctrl words it.
	if _, err := Peers(ctl, "wgbot-absent0", nil); err == nil {
		t.Error("a missing device was read")
	}
}

// describe is a peer in a form where equal peers print equally, whatever
// the length of their IP slices.
func describe(p wgtypes.Peer) string {
	var ips []string
	for _, n := range p.AllowedIPs {
		ips = append(ips, n.String())
	}
	ep := "none"
	if p.Endpoint != nil {
		ep = p.Endpoint.String()
	}
	return fmt.Sprintf("%s psk=%s ep=%s ka=%s hs=%v rx=%d tx=%d v=%d ips=%v", p.PublicKey, p.PresharedKey, ep,
		p.PersistentKeepaliveInterval, p.LastHandshakeTime.UnixNano(), p.ReceiveBytes, p.TransmitBytes, p.ProtocolVersion, ips)
}

const uapiPeer = `public_key=%064x
preshared_key=0000000000000000000000000000000000000000000000000000000000000000
protocol_version=1
endpoint=[2001:db8::7]:51820
last_handshake_time_sec=1764000000
last_handshake_time_nsec=5
tx_bytes=123456789012
rx_bytes=42
persistent_keepalive_interval=25
allowed_ip=10.8.0.%d/32
allowed_ip=fd00::8:%x/128
`

func uapi(peers int, tail string) string {
	var b strings.Builder
	b.WriteString("private_key=" + strings.Repeat("11", 32) + "\nlisten_port=51820\n")
	for i := range peers {
		fmt.Fprintf(&b, uapiPeer, i+1, i%250+2, i+1)
	}
	b.WriteString(tail)
	return b.String()
}

func parse(text string, each func(*wgtypes.Peer)) (*wgtypes.Device, error) {
	return parseUAPI(bufio.NewReader(strings.NewReader(text)), each)
}

// The parser reads every field a peer has; errors of the device and
// broken answers are errors, not a short device.
func TestParseUAPI(t *testing.T) {
	var got []wgtypes.Peer
	d, err := parse(uapi(2, "errno=0\n\n"), func(p *wgtypes.Peer) { got = append(got, clone(p)) })
	if err != nil {
		t.Fatal(err)
	}
	if d.ListenPort != 51820 || len(got) != 2 {
		t.Fatalf("port %d, %d peers; want 51820, 2", d.ListenPort, len(got))
	}
	want := "0000000000000000000000000000000000000000000000000000000000000002"
	p := got[1]
	if fmt.Sprintf("%x", p.PublicKey[:]) != want || p.Endpoint.String() != "[2001:db8::7]:51820" ||
		!p.LastHandshakeTime.Equal(time.Unix(1764000000, 5)) || p.TransmitBytes != 123456789012 || p.ReceiveBytes != 42 ||
		p.PersistentKeepaliveInterval != 25*time.Second || p.ProtocolVersion != 1 ||
		!strings.HasSuffix(describe(p), "ips=[10.8.0.3/32 fd00::8:2/128]") {
		t.Errorf("peer 2 read as %s", describe(p))
	}
	if got[0].AllowedIPs[0].String() != "10.8.0.2/32" {
		t.Errorf("peer 1's allowed IPs %v were overwritten by peer 2's", got[0].AllowedIPs)
	}

	for name, text := range map[string]string{
		"device error":  uapi(1, "errno=-5\n\n"),
		"other error":   uapi(1, "errno=19\n\n"),
		"too large":     uapi(1, "rx_bytes=9223372036854775808\nerrno=0\n\n"),
		"no errno":      uapi(1, "\n"),
		"cut short":     uapi(1, "errno=0\n")[:200],
		"no end":        uapi(1, "errno=0\n"),
		"not key=value": uapi(1, "garbage\nerrno=0\n\n"),
		"short key":     "public_key=abcd\nerrno=0\n\n",
		"bad number":    uapi(1, "rx_bytes=-1\nerrno=0\n\n"),
		"bad prefix":    uapi(1, "allowed_ip=10.0.0.1/33\nerrno=0\n\n"),
	} {
		_, err := parse(text, nil)
		if err == nil {
			t.Errorf("%s: read without an error", name)
		}
		if name == "device error" && !strings.Contains(err.Error(), "errno=-5") {
			t.Errorf("the device's error reads %q, want errno=-5", err)
		}
	}
}

// Reading a device costs the same allocations at 10,000 peers as at 10:
// the peer is filled again, not kept.
func TestParseUAPIAllocationsFlat(t *testing.T) {
	allocs := func(peers int) float64 {
		text := uapi(peers, "errno=0\n\n")
		return testing.AllocsPerRun(5, func() {
			n := 0
			if _, err := parse(text, func(*wgtypes.Peer) { n++ }); err != nil || n != peers {
				t.Fatalf("%d of %d peers, %v", n, peers, err)
			}
		})
	}
	small, large := allocs(10), allocs(10000)
	if large > small+10 {
		t.Errorf("%.0f allocations at 10 peers, %.0f at 10,000", small, large)
	}
}

// Whatever a device answers, the parser returns peers or an error, and
// never panics.
func FuzzParseUAPI(f *testing.F) {
	f.Add(uapi(2, "errno=0\n\n"))
	f.Add(uapi(1, "allowed_ip=::ffff:10.0.0.1/128\nendpoint=[fe80::1%eth0]:1\nerrno=0\n\n"))
	f.Fuzz(func(t *testing.T, text string) {
		parse(text, func(p *wgtypes.Peer) { _ = describe(clone(p)) })
	})
}
