package wgconf

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testKey returns a fixed, valid-looking WireGuard key for name.
func testKey(name string) string {
	sum := sha256.Sum256([]byte(name))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func mustParse(t testing.TB, data []byte) *File {
	t.Helper()
	f, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func mustReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeTestFile(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	// WriteFile applies the umask; tests want the exact mode.
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// tempFiles lists wgbot temp files in dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), tempInfix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// peerFor returns the managed peer a test process uses for id: its key
// derives from the id, so every process builds the same peer for one id.
func peerFor(id string, n int) Peer {
	p := Peer{
		ID:         id,
		PublicKey:  testKey("peer " + id),
		AllowedIPs: prefixes(fmt.Sprintf("10.%d.%d.%d/32", 100+n/62500, n/250%250, n%250+2), fmt.Sprintf("fd00:100::%x/128", n+2)),
	}
	if n%2 == 0 {
		p.PresharedKey = testKey("psk " + id)
	}
	return p
}

func equalPeers(a, b []Peer) bool {
	return slices.EqualFunc(a, b, Peer.equal)
}

func peerIDs(peers []Peer) []string {
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = p.ID
	}
	return ids
}
