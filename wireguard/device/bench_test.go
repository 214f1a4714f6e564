package device_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/wireguard/device"
	"wgbot/wireguard/wgtest"
)

const benchPeers = 1000

// benchDesired returns n peers with one tunnel IP each in 10.64.0.0/16.
func benchDesired(b *testing.B, n int) []device.Peer {
	peers := make([]device.Peer, n)
	for i := range peers {
		peers[i] = device.Peer{
			PublicKey:    publicKey(b),
			PresharedKey: mustKey(b, wgtypes.GenerateKey),
			AllowedIPs:   []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64, byte(i >> 8), byte(i)}), 32)},
		}
	}
	return peers
}

// toggle moves peer 0 between two tunnel IPs, so that every iteration has
// exactly one changed peer.
func toggle(peers []device.Peer, i int) {
	peers[0].AllowedIPs = []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.65.0.%d/32", i%2))}
}

// BenchmarkSync compares, on a wireguard-go device holding 1000 peers of
// which one changed, Sync (read the device, diff, write one peer) with the
// naive alternative of writing all 1000 peers with ConfigureDevice.
func BenchmarkSync(b *testing.B) {
	wgtest.RequireTools(b)
	ns := wgtest.Netns(b, "bench")
	iface := wgtest.UniqueName(b, "wgb")
	wgtest.StartWireGuardGo(b, ns, iface)
	wg := newClient(b)
	desired := benchDesired(b, benchPeers)
	if _, err := device.Sync(wg, iface, desired); err != nil {
		b.Fatal(err)
	}

	b.Run("Sync/1000peers-1changed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			toggle(desired, i)
			res, err := device.Sync(wg, iface, desired)
			if err != nil {
				b.Fatal(err)
			}
			if res.Updated != 1 || res.Unchanged != benchPeers-1 {
				b.Fatalf("Sync: %s; want 1 updated", res)
			}
		}
	})

	// Sync's floor: it must read the live device to see hand edits. It
	// reads it as a stream; wgctrl's whole Device is the other way.
	b.Run("Peers/1000peers-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if _, err := device.Peers(wg, iface, func(*wgtypes.Peer) { n++ }); err != nil || n != benchPeers {
				b.Fatalf("%d peers, %v", n, err)
			}
		}
	})
	b.Run("Device/1000peers-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wg.Device(iface); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("ConfigureDevice/1000peers-all", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			toggle(desired, i)
			cfg := wgtypes.Config{Peers: make([]wgtypes.PeerConfig, len(desired))}
			for j, p := range desired {
				psk := p.PresharedKey
				cfg.Peers[j] = wgtypes.PeerConfig{
					PublicKey:         p.PublicKey,
					PresharedKey:      &psk,
					ReplaceAllowedIPs: true,
					AllowedIPs:        []net.IPNet{{IP: p.AllowedIPs[0].Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}},
				}
			}
			if err := wg.ConfigureDevice(iface, cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDiff measures the pure diff, without the device round trips.
func BenchmarkDiff(b *testing.B) {
	desired := benchDesired(b, benchPeers)
	current := make([]wgtypes.Peer, len(desired))
	for i, p := range desired {
		current[i] = wgtypes.Peer{
			PublicKey:    p.PublicKey,
			PresharedKey: p.PresharedKey,
			AllowedIPs:   []net.IPNet{{IP: p.AllowedIPs[0].Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}},
		}
	}
	toggle(desired, 1)
	b.ReportAllocs()
	for b.Loop() {
		if c := device.Diff(current, desired); len(c.Update) != 1 {
			b.Fatalf("Diff: %s; want 1 updated", c.Result())
		}
	}
}
