package wgconf

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenPeers are the managed peers the golden files are rendered with. They
// are deliberately out of ID order, which is numeric: 17 before 1001.
func goldenPeers() []Peer {
	return []Peer{
		{
			ID:           "1001",
			PublicKey:    testKey("golden 1001"),
			PresharedKey: testKey("golden psk 1001"),
			AllowedIPs:   prefixes("10.8.3.233/32", "fd00:8::3e9/128"),
		},
		{
			ID:                  "17",
			PublicKey:           testKey("golden 17"),
			AllowedIPs:          prefixes("10.8.0.17/32", "fd00:8::17/128"),
			Endpoint:            "[2001:db8::17]:51820",
			PersistentKeepalive: 25,
		},
		{
			ID:         "1002",
			PublicKey:  testKey("golden 1002"),
			AllowedIPs: prefixes("10.8.3.234/32"),
			Endpoint:   "203.0.113.7:41000",
		},
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got %q\nwant %q", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	inputs, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 6 {
		t.Fatalf("found %d golden inputs, want at least 6", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".conf")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := mustReadFile(t, in)
			f := mustParse(t, src)

			// Untouched, a file renders to its own bytes.
			if got := f.Render(); !bytes.Equal(got, src) {
				t.Fatalf("Parse then Render changed the file:\n got %q\nwant %q", got, src)
			}

			for _, c := range []struct {
				suffix string
				peers  []Peer
			}{
				{".managed.golden", goldenPeers()},
				{".unmanaged.golden", nil},
			} {
				f := mustParse(t, src)
				if err := f.SetManagedPeers(c.peers); err != nil {
					t.Fatal(err)
				}
				out := f.Render()
				checkGolden(t, filepath.Join("testdata", name+c.suffix), out)
				checkRendered(t, f, out, c.peers)
			}
		})
	}
}

// checkRendered checks what wgbot promises about out, the rendering of f
// with managed peers set to peers.
func checkRendered(t *testing.T, f *File, out []byte, peers []Peer) {
	t.Helper()
	g, err := Parse(out)
	if err != nil {
		t.Fatalf("rendered file does not parse: %v", err)
	}
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b Peer) int { return compareIDs(a.ID, b.ID) })
	if got := g.ManagedPeers(); !equalPeers(got, sorted) {
		t.Errorf("managed peers after reparse:\n got %+v\nwant %+v", got, sorted)
	}

	// Every line wgbot does not own is kept, byte for byte and in order;
	// Render only completes a missing final line ending.
	want := f.unmanagedBytes()
	if len(peers) > 0 && len(want) > 0 && !bytes.HasSuffix(want, []byte("\n")) {
		if bytes.HasSuffix(want, []byte("\r")) {
			want = append(want, '\n')
		} else {
			want = append(want, f.renderEOL(want)...)
		}
	}
	if got := g.unmanagedBytes(); !bytes.Equal(got, want) {
		t.Errorf("lines wgbot does not own changed:\n got %q\nwant %q", got, want)
	}
	if a, b := keyValues(f), keyValues(g); !slices.Equal(a, b) {
		t.Errorf("parsed [Interface] and hand-made peers changed:\n got %q\nwant %q", b, a)
	}

	// Same peers again: same bytes, so Writer would not write.
	if err := g.SetManagedPeers(peers); err != nil {
		t.Fatal(err)
	}
	if again := g.Render(); !bytes.Equal(again, out) {
		t.Errorf("rendering the same peers again differs:\n got %q\nwant %q", again, out)
	}
}

// keyValues lists the keys and values of the [Interface] and the hand-made
// peers, without line numbers.
func keyValues(f *File) []string {
	var out []string
	ifc, _ := f.Interface()
	for _, kv := range ifc.Entries {
		out = append(out, "interface "+kv.Key+"="+kv.Value)
	}
	for i, p := range f.UnmanagedPeers() {
		for _, kv := range p.Entries {
			out = append(out, fmt.Sprintf("peer %d %s=%s", i, kv.Key, kv.Value))
		}
	}
	return out
}
