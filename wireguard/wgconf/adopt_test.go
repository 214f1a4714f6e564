package wgconf

import (
	"net/netip"
	"strings"
	"testing"
)

// TestAdoptUnmanaged: hand-made sections whose key wgbot now manages
// leave the file with the name comment above them; every other line,
// hand-made peers included, stays; before and after SetManagedPeers.
func TestAdoptUnmanaged(t *testing.T) {
	src := "[Interface]\nPrivateKey = " + testKey("srv") + "\nPostUp = iptables -A FORWARD -i %i -j ACCEPT\n\n" +
		"# alice\n[Peer]\nPublicKey = " + testKey("alice") + "\nAllowedIPs = 10.8.0.2/32\n\n" +
		"# router, kept\n[Peer]\nPublicKey = " + testKey("router") + "\nAllowedIPs = 192.168.9.0/24\n\n" +
		"### Client bob\n[Peer]\nPublicKey = " + testKey("bob") + "\nAllowedIPs = 10.8.0.3/32\nPersistentKeepalive = 25\n"
	managed := []Peer{
		{ID: "1", PublicKey: testKey("alice"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.8.0.2/32")}},
		{ID: "2", PublicKey: testKey("bob"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.8.0.3/32")}, PersistentKeepalive: 25},
	}
	adopt := map[string]bool{testKey("alice"): true, testKey("bob"): true}
	for _, first := range []bool{false, true} {
		f := mustParse(t, []byte(src))
		if first {
			// An adoption after a render of the managed peers (a cached File).
			if err := f.SetManagedPeers(nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := f.AdoptUnmanaged(adopt); n != 2 {
			t.Fatalf("adopted %d, want 2", n)
		}
		if err := f.SetManagedPeers(managed); err != nil {
			t.Fatalf("the adopted keys still clash: %v", err)
		}
		out := string(f.Render())
		g := mustParse(t, []byte(out))
		if len(g.ManagedPeers()) != 2 || len(g.UnmanagedPeers()) != 1 || g.UnmanagedPeers()[0].PublicKey != testKey("router") {
			t.Fatalf("after adoption:\n%s", out)
		}
		if strings.Contains(out, "# alice") || strings.Contains(out, "Client bob") || !strings.Contains(out, "# router, kept") ||
			!strings.Contains(out, "PostUp = iptables -A FORWARD -i %i -j ACCEPT") {
			t.Fatalf("lines kept or dropped wrongly:\n%s", out)
		}
		if f.AdoptUnmanaged(adopt) != 0 || !f.HasUnmanaged(testKey("router")) || f.HasUnmanaged(testKey("alice")) {
			t.Fatal("a second adoption must find nothing")
		}
	}
}

// TestAdoptKeepsCommentsTouchingTheSectionBefore: a comment run right
// above an adopted [Peer] is dropped only when it stands apart (a blank
// line, the file's top, or another adopted section before it); a
// commented-out line at the end of [Interface] is the operator's.
func TestAdoptKeepsCommentsTouchingTheSectionBefore(t *testing.T) {
	src := "[Interface]\nPrivateKey = " + testKey("srv") + "\nPostUp = iptables -A FORWARD -i %i -j ACCEPT\n" +
		"#PostDown = iptables -D FORWARD -i %i -j ACCEPT\n" +
		"[Peer]\nPublicKey = " + testKey("alice") + "\nAllowedIPs = 10.8.0.2/32\n" +
		"# bob, right after alice\n[Peer]\nPublicKey = " + testKey("bob") + "\nAllowedIPs = 10.8.0.3/32\n"
	f := mustParse(t, []byte(src))
	if n := f.AdoptUnmanaged(map[string]bool{testKey("alice"): true, testKey("bob"): true}); n != 2 {
		t.Fatalf("adopted %d, want 2", n)
	}
	out := string(f.Render())
	if !strings.Contains(out, "#PostDown = iptables -D FORWARD -i %i -j ACCEPT") {
		t.Fatalf("the commented-out PostDown was dropped:\n%s", out)
	}
	if strings.Contains(out, "bob, right after alice") {
		t.Fatalf("the name comment of a peer after an adopted one stayed:\n%s", out)
	}
}
