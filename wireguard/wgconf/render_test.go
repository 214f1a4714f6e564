package wgconf

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestSetManagedPeersRefusesBadPeers(t *testing.T) {
	t.Parallel()
	hand := testKey("hand")
	src := "[Interface]\nListenPort = 1\n\n[Peer]\nPublicKey = " + hand + "\n"
	good := func(mod func(p *Peer)) []Peer {
		p := Peer{ID: "1", PublicKey: testKey("1"), AllowedIPs: prefixes("10.0.0.2/32")}
		mod(&p)
		return []Peer{p}
	}
	keyWithNewline := testKey("1")[:20] + "\n" + testKey("1")[21:]
	tests := []struct {
		name    string
		peers   []Peer
		wantErr string
	}{
		{"empty id", good(func(p *Peer) { p.ID = "" }), "empty"},
		{"id with a space", good(func(p *Peer) { p.ID = "a b" }), "may contain only"},
		{"id with a newline", good(func(p *Peer) { p.ID = "1\n[Peer]" }), "may contain only"},
		{"id with #", good(func(p *Peer) { p.ID = "1#" }), "may contain only"},
		{"id too long", good(func(p *Peer) { p.ID = strings.Repeat("a", 129) }), "longer than"},
		{"bad public key", good(func(p *Peer) { p.PublicKey = "abc" }), "invalid PublicKey"},
		// Go's base64 decoder skips newlines, which would split the line.
		{"public key with a newline", good(func(p *Peer) { p.PublicKey = keyWithNewline }), "invalid PublicKey"},
		{"bad preshared key", good(func(p *Peer) { p.PresharedKey = "x" }), "invalid PresharedKey"},
		{"zero prefix", good(func(p *Peer) { p.AllowedIPs = []netip.Prefix{{}} }), "invalid AllowedIPs"},
		{"endpoint with a newline", good(func(p *Peer) { p.Endpoint = "a:1\nPostUp = rm -rf /" }), "invalid Endpoint"},
		{"endpoint with #", good(func(p *Peer) { p.Endpoint = "a#b:1" }), "invalid Endpoint"},
		{"endpoint without port", good(func(p *Peer) { p.Endpoint = "vpn.example.com" }), "invalid Endpoint"},
		{"negative keepalive", good(func(p *Peer) { p.PersistentKeepalive = -1 }), "out of range"},
		{"keepalive too big", good(func(p *Peer) { p.PersistentKeepalive = 65536 }), "out of range"},
		{"duplicate id", append(good(func(*Peer) {}), Peer{ID: "1", PublicKey: testKey("2")}), "duplicate id"},
		{"duplicate public key", append(good(func(*Peer) {}), Peer{ID: "2", PublicKey: testKey("1")}), `public key already used by peer "1"`},
		{"public key of the hand-made peer", good(func(p *Peer) { p.PublicKey = hand }), "hand-made peer at line 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, []byte(src))
			err := f.SetManagedPeers(tt.peers)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SetManagedPeers error: got %v, want one containing %q", err, tt.wantErr)
			}
			if got := string(f.Render()); got != src {
				t.Errorf("a refused SetManagedPeers changed the file:\n%q", got)
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	src := mustReadFile(t, "testdata/server-iptables.conf")
	peers := make([]Peer, 50)
	for i := range peers {
		peers[i] = peerFor(string(rune('a'+i%26))+strings.Repeat("x", i/26), i)
	}
	render := func(ps []Peer) []byte {
		f := mustParse(t, src)
		if err := f.SetManagedPeers(ps); err != nil {
			t.Fatal(err)
		}
		return f.Render()
	}
	want := render(peers)
	for _, order := range []string{"reversed", "rotated"} {
		t.Run(order, func(t *testing.T) {
			ps := slices.Clone(peers)
			if order == "reversed" {
				slices.Reverse(ps)
			} else {
				ps = append(ps[17:], ps[:17]...)
			}
			if got := render(ps); !bytes.Equal(got, want) {
				t.Errorf("same peers in another order render differently")
			}
		})
	}
	ids := peerIDs(mustParse(t, want).ManagedPeers())
	if !slices.IsSortedFunc(ids, compareIDs) || len(ids) != len(peers) {
		t.Errorf("managed peers not sorted by id: %q", ids)
	}
	if !bytes.HasPrefix(want, src) {
		t.Errorf("rendered file does not start with the unmanaged part unchanged")
	}
}

func TestRenderLineEndings(t *testing.T) {
	t.Parallel()
	p := Peer{ID: "1", PublicKey: testKey("1")}
	managed := "# wgbot:peer 1\n[Peer]\nPublicKey = " + testKey("1") + "\n"
	crlf := strings.ReplaceAll(managed, "\n", "\r\n")
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty file: no leading blank line", "", managed},
		{"missing final newline is added", "[Interface]\nListenPort = 1", "[Interface]\nListenPort = 1\n\n" + managed},
		{"CRLF file gets CRLF", "[Interface]\r\nListenPort = 1\r\n", "[Interface]\r\nListenPort = 1\r\n\r\n" + crlf},
		{"CRLF file without final line ending", "[Interface]\r\nListenPort = 1", "[Interface]\r\nListenPort = 1\r\n\r\n" + crlf},
		{"trailing blank lines kept", "[Interface]\n\n\n", "[Interface]\n\n\n\n" + managed},
		{"managed-only CRLF file stays CRLF", crlf, crlf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, []byte(tt.in))
			if err := f.SetManagedPeers([]Peer{p}); err != nil {
				t.Fatal(err)
			}
			if got := string(f.Render()); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAccessorsReturnCopies(t *testing.T) {
	t.Parallel()
	f := mustParse(t, mustReadFile(t, "testdata/wgbot-written.conf"))
	f.ManagedPeers()[0].AllowedIPs[0] = netip.MustParsePrefix("192.0.2.1/32")
	f.UnmanagedPeers()[0].AllowedIPs[0] = netip.MustParsePrefix("192.0.2.1/32")
	ifc, _ := f.Interface()
	ifc.Addresses[0] = netip.MustParsePrefix("192.0.2.1/32")
	if got := f.ManagedPeers()[0].AllowedIPs[0].String(); got != "10.8.0.2/32" {
		t.Errorf("ManagedPeers shares memory with the File: %s", got)
	}
	if got := f.UnmanagedPeers()[0].AllowedIPs[0].String(); got != "10.8.0.250/32" {
		t.Errorf("UnmanagedPeers shares memory with the File: %s", got)
	}
	if ifc, _ := f.Interface(); ifc.Addresses[0].String() != "10.8.0.1/24" {
		t.Errorf("Interface shares memory with the File: %s", ifc.Addresses[0])
	}

	peers := goldenPeers()
	if err := f.SetManagedPeers(peers); err != nil {
		t.Fatal(err)
	}
	before := f.Render()
	peers[0].AllowedIPs[0] = netip.MustParsePrefix("192.0.2.1/32")
	if !bytes.Equal(f.Render(), before) {
		t.Error("SetManagedPeers keeps the caller's slices")
	}
}

// TestRenderedBlocksFollowChanges: a File kept in memory re-renders only the
// peers that changed, so after any sequence of puts, replacements and
// removals its output must equal a fresh render of the same peers, with the
// file's own line ending.
func TestRenderedBlocksFollowChanges(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n"} {
		src := strings.ReplaceAll(string(mustReadFile(t, "testdata/server-iptables.conf")), "\n", eol)
		f := mustParse(t, []byte(src))
		if err := f.SetManagedPeers(benchPeers(50)); err != nil {
			t.Fatal(err)
		}
		f.Render() // every block rendered once
		rng := rand.New(rand.NewPCG(1, 2))
		for step := range 300 {
			n := rng.IntN(80)
			id := fmt.Sprintf("%06d", n)
			switch rng.IntN(3) {
			case 0:
				f.RemoveManagedPeer(id)
			case 1:
				if err := f.PutManagedPeer(peerFor(id, n)); err != nil {
					t.Fatal(err)
				}
			default: // the same id with other values
				p := peerFor(id, n)
				p.PersistentKeepalive = 1 + step%60
				if err := f.PutManagedPeer(p); err != nil {
					t.Fatal(err)
				}
			}
			got := f.Render()
			fresh := mustParse(t, []byte(src))
			if err := fresh.SetManagedPeers(f.ManagedPeers()); err != nil {
				t.Fatal(err)
			}
			if want := fresh.Render(); !bytes.Equal(got, want) {
				t.Fatalf("eol %q, step %d: cached render differs from a fresh one:\n%s\nwant:\n%s", eol, step, got, want)
			}
		}
	}
}

// Managed peers are in numeric ID order, so a new peer, whose ID is the
// highest, is added at the end: the new rendering keeps every byte of the
// old one, and a write into the spare rewrites only the tail. In string
// order peer 1000 went before peer 2, and a write rewrote most of the file.
func TestNewPeerGoesAtTheEnd(t *testing.T) {
	f := mustParse(t, []byte("[Interface]\nListenPort = 51820\n"))
	var peers []Peer
	for i := 1; i <= 999; i++ {
		peers = append(peers, peerFor(strconv.Itoa(i), i))
	}
	if err := f.SetManagedPeers(peers); err != nil {
		t.Fatal(err)
	}
	before, size := f.image(), int64(len(f.Render()))
	if err := f.PutManagedPeer(peerFor("1000", 1000)); err != nil {
		t.Fatal(err)
	}
	if kept := commonPrefix(before, f.image()); kept != size {
		t.Errorf("adding peer 1000 kept %d of the %d bytes before it", kept, size)
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"9", "10", -1}, {"10", "9", 1}, {"17", "17", 0}, {"1001", "1002", -1}, {"b", "ab", -1}, {"ab", "ac", -1}} {
		if got := compareIDs(c.a, c.b); got != c.want {
			t.Errorf("compareIDs(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// SetManagedPeers keeps the rendered block of every peer that did not
// change (a resync, where none did, renders nothing), and the file renders
// as a fresh one with the new peers would.
func TestSetManagedPeersKeepsUnchangedBlocks(t *testing.T) {
	src := []byte("[Interface]\nListenPort = 51820\n")
	f := mustParse(t, src)
	var peers []Peer
	for i := 1; i <= 300; i++ {
		peers = append(peers, peerFor(strconv.Itoa(i), i))
	}
	if err := f.SetManagedPeers(peers); err != nil {
		t.Fatal(err)
	}
	f.image()
	before := slices.Clone(f.blocks)

	changed := slices.Clone(peers)
	changed[9].PersistentKeepalive = 25            // peer 10 changes
	changed = slices.Delete(changed, 19, 20)       // peer 20 goes
	changed = append(changed, peerFor("301", 301)) // peer 301 comes
	slices.Reverse(changed)                        // in any order
	if err := f.SetManagedPeers(changed); err != nil {
		t.Fatal(err)
	}
	for i, p := range f.managed {
		n, _ := strconv.Atoi(p.ID)
		kept := f.blocks[i] != ""
		if want := n != 10 && n != 301; kept != want {
			t.Errorf("peer %s: block kept %v, want %v", p.ID, kept, want)
		}
		if kept && unsafe.StringData(f.blocks[i]) != unsafe.StringData(before[n-1]) {
			t.Errorf("peer %s: its block was rendered again", p.ID)
		}
	}
	fresh := mustParse(t, src)
	if err := fresh.SetManagedPeers(changed); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.Render(), fresh.Render()) {
		t.Error("the file with kept blocks renders differently from a fresh one")
	}
}
