package device_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/wireguard/device"
	"wgbot/wireguard/wgtest"
)

func TestSyncRejectsInvalidInput(t *testing.T) {
	tests := []struct {
		name    string
		desired []device.Peer
		want    string
	}{
		{"empty public key", []device.Peer{{}}, "public key is empty"},
		{"one key twice", []device.Peer{{PublicKey: key(1)}, {PublicKey: key(1)}}, "appears twice"},
		{"invalid prefix", []device.Peer{{PublicKey: key(1), AllowedIPs: []netip.Prefix{{}}}}, "invalid allowed IP"},
		{"negative keepalive", []device.Peer{{PublicKey: key(1), PersistentKeepalive: -time.Second}}, "persistent keepalive"},
		{"keepalive beyond a uint16 of seconds", []device.Peer{{PublicKey: key(1), PersistentKeepalive: 65536 * time.Second}}, "persistent keepalive"},
		{
			name: "one tunnel IP for two peers, spelled differently",
			desired: []device.Peer{
				{PublicKey: key(1), AllowedIPs: prefixes("10.66.0.5/32")},
				{PublicKey: key(2), AllowedIPs: prefixes("::ffff:10.66.0.5/128")},
			},
			want: "claimed by peers",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The client is never reached: invalid input fails before any I/O.
			_, err := device.Sync(nil, "wg0", tt.desired)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "wg0") {
				t.Fatalf("Sync error = %v, want one naming wg0 and containing %q", err, tt.want)
			}
		})
	}
}

func newClient(t testing.TB) *device.Control {
	t.Helper()
	c, err := device.Open()
	if err != nil {
		t.Fatalf("open wgctrl: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recordingClient passes calls through to the real client and remembers
// what Sync wrote, so a test can see that it wrote nothing.
type recordingClient struct {
	device.Client
	configs []wgtypes.Config
}

func (r *recordingClient) ConfigureDevice(name string, cfg wgtypes.Config) error {
	r.configs = append(r.configs, cfg)
	return r.Client.ConfigureDevice(name, cfg)
}

func TestSyncMissingInterface(t *testing.T) {
	wgtest.RequireTools(t)
	iface := wgtest.UniqueName(t, "wgx")
	_, err := device.Sync(newClient(t), iface, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Sync on missing %s: error %v, want one matching os.ErrNotExist", iface, err)
	}
	for _, want := range []string{iface, "ip link add " + iface + " type wireguard", "wireguard-go " + iface} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func mustKey(t testing.TB, gen func() (wgtypes.Key, error)) wgtypes.Key {
	t.Helper()
	k, err := gen()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func publicKey(t testing.TB) wgtypes.Key {
	t.Helper()
	return mustKey(t, wgtypes.GeneratePrivateKey).PublicKey()
}

func findPeer(dev *wgtypes.Device, k wgtypes.Key) (wgtypes.Peer, bool) {
	for _, p := range dev.Peers {
		if p.PublicKey == k {
			return p, true
		}
	}
	return wgtypes.Peer{}, false
}

func readDevice(t testing.TB, c device.Client, iface string) *wgtypes.Device {
	t.Helper()
	dev, err := c.Device(iface)
	if err != nil {
		t.Fatalf("read device %s: %v", iface, err)
	}
	return dev
}

func mustSync(t testing.TB, c device.Client, iface string, desired []device.Peer, want device.Result) {
	t.Helper()
	got, err := device.Sync(c, iface, desired)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Sync: %s; want %s", got, want)
	}
}

// TestSyncConverges runs Sync against a real wireguard-go device: the device
// ends up holding exactly the desired peers in the form WireGuard stores
// them, a second Sync writes nothing, and peers changed or added by hand are
// put back.
func TestSyncConverges(t *testing.T) {
	wgtest.RequireTools(t)
	ns := wgtest.Netns(t, "conv")
	iface := wgtest.UniqueName(t, "wgs")
	wgtest.StartWireGuardGo(t, ns, iface)
	wg := newClient(t)

	priv := mustKey(t, wgtypes.GeneratePrivateKey)
	port := 51820
	if err := wg.ConfigureDevice(iface, wgtypes.Config{PrivateKey: &priv, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}

	psk := mustKey(t, wgtypes.GenerateKey)
	desired := []device.Peer{
		{PublicKey: publicKey(t), PresharedKey: psk, AllowedIPs: prefixes("10.66.0.2/32", "fd66::2/128")},
		{PublicKey: publicKey(t), AllowedIPs: prefixes("10.66.0.3/32")},
		// A hand-made site peer: unmasked prefix, endpoint and keepalive.
		{
			PublicKey:           publicKey(t),
			AllowedIPs:          prefixes("192.168.77.1/24"),
			Endpoint:            &net.UDPAddr{IP: net.ParseIP("198.18.0.9"), Port: 51821},
			PersistentKeepalive: 25 * time.Second,
		},
	}
	rec := &recordingClient{Client: wg}
	mustSync(t, rec, iface, desired, device.Result{Added: 3})

	dev := readDevice(t, wg, iface)
	if got := device.Diff(dev.Peers, desired); !got.Empty() || got.Unchanged != 3 {
		t.Errorf("device after Sync differs from desired: %s", got.Result())
	}
	site, _ := findPeer(dev, desired[2].PublicKey)
	if got := site.AllowedIPs[0].String(); got != "192.168.77.0/24" {
		t.Errorf("site peer allowed IP = %s, want 192.168.77.0/24", got)
	}
	if site.Endpoint.String() != "198.18.0.9:51821" || site.PersistentKeepaliveInterval != 25*time.Second {
		t.Errorf("site peer endpoint %s keepalive %s, want 198.18.0.9:51821 and 25s", site.Endpoint, site.PersistentKeepaliveInterval)
	}
	if dev.PrivateKey != priv || dev.ListenPort != port {
		t.Errorf("Sync changed the device's own key or port (port %d)", dev.ListenPort)
	}

	rec.configs = nil
	mustSync(t, rec, iface, desired, device.Result{Unchanged: 3})
	if len(rec.configs) != 0 {
		t.Errorf("second Sync wrote %d configs to an already converged device", len(rec.configs))
	}

	// Someone edits the live interface by hand: moves a peer's IP and adds
	// a stranger.
	stranger := publicKey(t)
	wgtest.Exec(t, ns, "wg", "set", iface,
		"peer", desired[1].PublicKey.String(), "allowed-ips", "10.66.0.99/32",
		"peer", stranger.String(), "allowed-ips", "10.66.0.50/32")
	rec.configs = nil
	mustSync(t, rec, iface, desired, device.Result{Updated: 1, Removed: 1, Unchanged: 2})
	if n := len(rec.configs[0].Peers); n != 2 {
		t.Errorf("repair wrote %d peer configs, want 2 (the moved peer and the stranger)", n)
	}
	dev = readDevice(t, wg, iface)
	if got := device.Diff(dev.Peers, desired); !got.Empty() {
		t.Errorf("device after repair differs from desired: %s", got.Result())
	}
}

// TestSyncEndToEnd proves the environment and Sync together: a client that
// imported its config tunnels pings to a server whose peers Sync manages;
// churning fifty other peers neither drops the client's pings nor resets its
// session; removing the client cuts it off.
func TestSyncEndToEnd(t *testing.T) {
	wgtest.RequireTools(t)
	wg := newClient(t)
	srvNS, cliNS := wgtest.Netns(t, "srv"), wgtest.Netns(t, "cli")
	wgtest.Veth(t, srvNS, netip.MustParsePrefix("198.18.0.1/30"), cliNS, netip.MustParsePrefix("198.18.0.2/30"))
	srvIf, cliIf := wgtest.UniqueName(t, "wgs"), wgtest.UniqueName(t, "wgc")
	wgtest.StartWireGuardGo(t, srvNS, srvIf)
	wgtest.StartWireGuardGo(t, cliNS, cliIf)

	// The server as an operator sets it up: key and port through wgctrl,
	// address and link with ip.
	srvPriv := mustKey(t, wgtypes.GeneratePrivateKey)
	port := 51820
	if err := wg.ConfigureDevice(srvIf, wgtypes.Config{PrivateKey: &srvPriv, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	wgtest.Exec(t, srvNS, "ip", "address", "add", "10.66.0.1/24", "dev", srvIf)
	wgtest.Exec(t, srvNS, "ip", "link", "set", srvIf, "up")

	// wgbot issues a config only after the reconcile that added its peer, so
	// Sync goes first. (The other order works too, but the client's first
	// failed handshake would make it wait REKEY_TIMEOUT, 5 s, to retry.)
	cliPriv := mustKey(t, wgtypes.GeneratePrivateKey)
	psk := mustKey(t, wgtypes.GenerateKey)
	cliPub := cliPriv.PublicKey()
	clientPeer := device.Peer{PublicKey: cliPub, PresharedKey: psk, AllowedIPs: prefixes("10.66.0.2/32")}
	mustSync(t, wg, srvIf, []device.Peer{clientPeer}, device.Result{Added: 1})

	// The client as a user sets it up: the .conf wgbot issued.
	wgtest.QuickUp(t, cliNS, cliIf, fmt.Sprintf(`[Interface]
PrivateKey = %s
Address = 10.66.0.2/32
DNS = 10.66.0.1

[Peer]
PublicKey = %s
PresharedKey = %s
Endpoint = 198.18.0.1:%d
AllowedIPs = 0.0.0.0/0
PersistentKeepalive = 25
`, cliPriv, srvPriv.PublicKey(), psk, port))

	wgtest.Exec(t, cliNS, "ping", "-c", "1", "-W", "5", "10.66.0.1")
	before, ok := findPeer(readDevice(t, wg, srvIf), cliPub)
	if !ok || before.LastHandshakeTime.IsZero() || before.ReceiveBytes == 0 {
		t.Fatalf("server after ping: client peer present %v, handshake %v, received %d bytes; want a handshake and traffic",
			ok, before.LastHandshakeTime, before.ReceiveBytes)
	}
	if out := wgtest.Exec(t, srvNS, "wg", "show", srvIf, "latest-handshakes"); !strings.Contains(out, cliPub.String()) || strings.Contains(out, cliPub.String()+"\t0\n") {
		t.Fatalf("wg show %s latest-handshakes has no handshake with the client:\n%s", srvIf, out)
	}

	t.Run("churn keeps the client's session", func(t *testing.T) {
		others := make([]device.Peer, 50)
		for i := range others {
			others[i] = device.Peer{PublicKey: publicKey(t), AllowedIPs: prefixes(fmt.Sprintf("10.66.0.%d/32", 100+i))}
		}
		moved := make([]device.Peer, len(others))
		for i, p := range others {
			p.AllowedIPs = prefixes(fmt.Sprintf("10.66.0.%d/32", 200+i))
			moved[i] = p
		}
		phases := []struct {
			peers []device.Peer
			want  device.Result
		}{
			{others, device.Result{Added: 50, Unchanged: 1}},
			{moved, device.Result{Updated: 50, Unchanged: 1}},
			{nil, device.Result{Removed: 50, Unchanged: 1}},
		}

		pinged := make(chan string, 1)
		go func() {
			// About three seconds of pings, every 30 ms.
			out, _ := wgtest.ExecErr(cliNS, "ping", "-c", "100", "-i", "0.03", "-W", "2", "10.66.0.1")
			pinged <- out
		}()

		last := before
		rounds := 0
		var pingOut string
	churn:
		for {
			for _, ph := range phases {
				mustSync(t, wg, srvIf, append([]device.Peer{clientPeer}, ph.peers...), ph.want)
				now, ok := findPeer(readDevice(t, wg, srvIf), cliPub)
				if !ok {
					t.Fatal("client peer vanished from the server during churn")
				}
				checkSameSession(t, last, now)
				last = now
				time.Sleep(10 * time.Millisecond)
			}
			rounds++
			select {
			case pingOut = <-pinged:
				break churn
			default:
			}
		}

		sent, received := pingCounts(t, pingOut)
		t.Logf("%d churn rounds of 150 peer changes; ping: %d sent, %d received", rounds, sent, received)
		if rounds < 3 {
			t.Errorf("only %d churn rounds overlapped the pings; the test proves nothing", rounds)
		}
		if sent-received > 1 {
			t.Errorf("client lost %d of %d pings while other peers churned:\n%s", sent-received, sent, pingOut)
		}
		if last.ReceiveBytes <= before.ReceiveBytes {
			t.Errorf("server received no client traffic during churn: %d bytes before, %d after", before.ReceiveBytes, last.ReceiveBytes)
		}
	})

	t.Run("removed client is cut off", func(t *testing.T) {
		mustSync(t, wg, srvIf, nil, device.Result{Removed: 1})
		out, err := wgtest.ExecErr(cliNS, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.66.0.1")
		if err == nil {
			t.Fatalf("ping through the tunnel still works after the client was removed:\n%s", out)
		}
		if _, received := pingCounts(t, out); received != 0 {
			t.Fatalf("removed client got %d ping replies:\n%s", received, out)
		}
		dev := readDevice(t, wg, srvIf)
		if len(dev.Peers) != 0 || dev.PrivateKey != srvPriv || dev.ListenPort != port {
			t.Errorf("server after removal: %d peers, port %d, key kept %v; want 0 peers and the original key and port",
				len(dev.Peers), dev.ListenPort, dev.PrivateKey == srvPriv)
		}
	})
}

// rekeyAfterTime is WireGuard's REKEY_AFTER_TIME: a healthy session renews
// its handshake no sooner than this.
const rekeyAfterTime = 120 * time.Second

// checkSameSession fails if the peer's session was torn down between two
// readings: a re-created peer starts with no handshake and zero counters.
func checkSameSession(t *testing.T, before, now wgtypes.Peer) {
	t.Helper()
	if !now.LastHandshakeTime.Equal(before.LastHandshakeTime) && now.LastHandshakeTime.Sub(before.LastHandshakeTime) < rekeyAfterTime {
		t.Fatalf("client handshake changed from %v to %v: its session was reset", before.LastHandshakeTime, now.LastHandshakeTime)
	}
	if now.ReceiveBytes < before.ReceiveBytes || now.TransmitBytes < before.TransmitBytes {
		t.Fatalf("client counters went back (rx %d→%d, tx %d→%d): the peer was re-created",
			before.ReceiveBytes, now.ReceiveBytes, before.TransmitBytes, now.TransmitBytes)
	}
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func pingCounts(t *testing.T, out string) (sent, received int) {
	t.Helper()
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ping summary in:\n%s", out)
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received
}

// A Sync bigger than one batch is written in batches, removals first across
// all of them: 10,000 peers go on an empty device, then 5,000 are replaced
// by new peers that take over their addresses, which must end on the new
// peers whatever batch each removal and addition fell in.
func TestSyncInBatches(t *testing.T) {
	wgtest.RequireTools(t)
	ns := wgtest.Netns(t, "batch")
	iface := wgtest.UniqueName(t, "wgb")
	wgtest.StartWireGuardGo(t, ns, iface)
	wg := newClient(t)

	peerAt := func(i int) device.Peer {
		return device.Peer{PublicKey: publicKey(t), AllowedIPs: prefixes(fmt.Sprintf("10.70.%d.%d/32", i/250, i%250+2))}
	}
	desired := make([]device.Peer, 10_000)
	for i := range desired {
		desired[i] = peerAt(i)
	}
	rec := &recordingClient{Client: wg}
	mustSync(t, rec, iface, desired, device.Result{Added: 10_000})
	for _, c := range rec.configs {
		if len(c.Peers) > 4096 {
			t.Fatalf("one ConfigureDevice call carried %d peers", len(c.Peers))
		}
	}
	if len(rec.configs) < 3 {
		t.Fatalf("10,000 peers in %d calls, want batches", len(rec.configs))
	}

	for i := 0; i < len(desired); i += 2 {
		desired[i] = peerAt(i) // a new key on the same address
	}
	rec.configs = nil
	mustSync(t, rec, iface, desired, device.Result{Added: 5_000, Removed: 5_000, Unchanged: 5_000})
	dev := readDevice(t, wg, iface)
	if got := device.Diff(dev.Peers, desired); !got.Empty() || got.Unchanged != 10_000 {
		t.Fatalf("device after the batched Sync differs from desired: %s", got.Result())
	}
}
