package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/importer"
	"wgbot/service"
	"wgbot/wireguard/wgconf"
	"wgbot/wireguard/wgtest"
)

// TestImportKeepsTheTunnel is the takeover of a hand-made server: a client
// pings through a peer written by hand in wg0.conf; `wgbot import` adopts
// it while the ping runs; the first reconcile after the import finds the
// device already equal (no peer added, updated or removed), writes the
// peer as managed in wg0.conf, and no packet is lost nor the handshake
// redone.
func TestImportKeepsTheTunnel(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cli, _ := wgtypes.GeneratePrivateKey()
	psk, _ := wgtypes.GenerateKey()
	// The old server: a hand-made peer with a name comment, a preshared
	// key and a keepalive of its own (not wgbot's 25).
	raw, err := os.ReadFile(w.confPath)
	if err != nil {
		t.Fatal(err)
	}
	raw = append(raw, fmt.Sprintf("\n# alice-phone\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = 10.77.0.9/32\nPersistentKeepalive = 15\n",
		cli.PublicKey(), psk)...)
	if err := os.WriteFile(w.confPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the resync puts the hand-made peer on the device", func() bool {
		_, ok := w.devicePeers(t)[cli.PublicKey()]
		return ok
	})
	wgtest.QuickUp(t, w.cliNS, w.cliIf, fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = 10.77.0.9/32

[Peer]
PublicKey = %s
PresharedKey = %s
Endpoint = 198.18.0.1:51820
AllowedIPs = 10.77.0.0/20
`, cli, w.serverPublic, psk))
	if err := w.ping(2); err != nil {
		t.Fatalf("ping through the hand-made peer: %v", err)
	}
	before := settle(t, w, cli.PublicKey())

	// wgbot takes over: the running reconciler stops (as the old tool's
	// process would be replaced), the import commits, then the first
	// reconcile runs, all while the client pings every 0.2 s.
	w.stop()
	pinged := make(chan string, 1)
	go func() {
		out, _ := wgtest.ExecErr(w.cliNS, "ping", "-c", "40", "-i", "0.2", "-W", "2", "10.77.0.1")
		pinged <- out
	}()
	time.Sleep(time.Second)
	list, err := importer.WgQuick(raw)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(w.store, w.keys, nil, service.Config{Server: w.srv, Plans: service.DefaultPlans(), Keepalive: 25}, nil, log)
	res, err := svc.Import(ctx, list, service.ImportOptions{ServerID: w.srv.ID, Apply: true, Days: 30})
	if err != nil {
		t.Fatalf("import: %v (problems %v)", err, res.Problems)
	}
	if len(res.Created) != 2 { // alice-phone and the router
		t.Fatalf("created %d peers, want 2: %+v", len(res.Created), res.Created)
	}
	first, err := w.rec.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := first.Device.Added + first.Device.Updated + first.Device.Removed; n != 0 {
		t.Fatalf("the first reconcile after the import touched the device: %s", first.Device)
	}
	if !first.FileChanged || first.Peers != 2 {
		t.Fatalf("wg0.conf not rewritten with the imported peers as managed: %+v", first)
	}
	second, err := w.rec.Reconcile(ctx)
	if err != nil || second.FileChanged || second.Device.Added+second.Device.Updated+second.Device.Removed != 0 {
		t.Fatalf("the second reconcile changed something: %+v, %v", second, err)
	}
	out := <-pinged
	if !strings.Contains(out, "40 packets transmitted, 40 received") {
		t.Fatalf("pings lost across the import:\n%s", out)
	}
	after := w.devicePeers(t)[cli.PublicKey()]
	if !after.LastHandshakeTime.Equal(before.LastHandshakeTime) && after.LastHandshakeTime.Sub(before.LastHandshakeTime) < 100*time.Second {
		t.Fatalf("handshake reset by the import: %v → %v", before.LastHandshakeTime, after.LastHandshakeTime)
	}
	if after.ReceiveBytes < before.ReceiveBytes {
		t.Fatal("counters reset: the peer was re-created")
	}
	if after.PersistentKeepaliveInterval != 15*time.Second || after.PresharedKey != psk {
		t.Fatalf("the peer's own keepalive or preshared key was not kept: %v", after.PersistentKeepaliveInterval)
	}

	// wg0.conf: the hand-made sections (and alice's name comment) are
	// gone, the peers are managed, the operator's [Interface] is intact.
	raw, err = os.ReadFile(w.confPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wgconf.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.UnmanagedPeers()) != 0 || len(f.ManagedPeers()) != 2 || strings.Contains(string(raw), "alice-phone") ||
		!strings.Contains(string(raw), "PostUp = iptables -A FORWARD -i %i -j ACCEPT") {
		t.Fatalf("wg0.conf after the takeover:\n%s", raw)
	}

	// A second import finds everything imported and changes nothing.
	again, err := svc.Import(ctx, list, service.ImportOptions{ServerID: w.srv.ID, Apply: true, Days: 30})
	if err != nil || len(again.Created) != 0 || len(again.Unchanged) != 2 {
		t.Fatalf("second import: created %d, unchanged %d, %v", len(again.Created), len(again.Unchanged), err)
	}

	// The next device wgbot issues gets a free address (the import moved
	// the high-water mark past 10.77.0.250).
	u := w.user(t, 7)
	w.start(t, w.url)
	d, err := w.svc.IssueTrial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if d.Peer.IP == netip.MustParseAddr("10.77.0.9") || d.Peer.IP == netip.MustParseAddr("10.77.0.250") {
		t.Fatalf("a new device got an imported address %s", d.Peer.IP)
	}
	if err := w.ping(1); err != nil {
		t.Fatalf("the imported client lost its tunnel after a new device: %v", err)
	}
}

// settle waits until the peer's session stands (a handshake older than
// REKEY_TIMEOUT that is not being redone) and returns the peer.
func settle(t *testing.T, w *world, key wgtypes.Key) wgtypes.Peer {
	t.Helper()
	before := w.devicePeers(t)[key]
	for deadline := time.Now().Add(45 * time.Second); ; {
		time.Sleep(6 * time.Second)
		if err := w.ping(1); err != nil {
			t.Fatal(err)
		}
		now := w.devicePeers(t)[key]
		if now.LastHandshakeTime.Equal(before.LastHandshakeTime) {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session never settled: last handshake %v", now.LastHandshakeTime)
		}
		before = now
	}
}
