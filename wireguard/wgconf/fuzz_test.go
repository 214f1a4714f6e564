package wgconf

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParseRender checks, for any input: Parse never panics and either fails
// with a *ParseError naming a line of the input, or gives a File that renders
// back to the input. Re-rendering the managed peers gives a file that parses
// to the same peers and the same unmanaged lines, and that is a fixed point:
// rendering it again changes nothing, so Writer stops writing.
func FuzzParseRender(f *testing.F) {
	inputs, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		f.Add(mustReadFile(f, in))
	}
	k := testKey("fuzz")
	for _, s := range []string{
		"",
		"\n",
		"\r\n\r",
		"[Interface]",
		"[Peer]\nPublicKey = " + k,
		"# wgbot:peer 1\n[Peer]\nPublicKey = " + k + "\r",
		"# wgbot:peer 1\n# wgbot:peer 2\n[Peer]\nPublicKey = " + k + "\n",
		"# wgbot:peer x\n\n# wgbot:peer y\n[Peer]\nPublicKey = " + k + "\n[Peer]\nPublicKey = " + testKey("b") + "\n",
		"x\r",
		"[Interface]\nA = 1 # c\n# wgbot:peer 1\n[Peer]\nPublicKey = " + k + "\nAllowedIPs = 10.0.0.1, ::1\n\n# c\n",
		"[Peer]\nPublicKey = " + k + "\n# wgbot:peer 9\n[Peer]\nPublicKey = " + testKey("c") + "\nEndpoint = [::1]:1\nPersistentKeepalive = off",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Line < 1 || pe.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("error names line %d of a %d-line input", pe.Line, bytes.Count(data, []byte("\n"))+1)
			}
			return
		}
		if out := file.Render(); !bytes.Equal(out, data) {
			t.Fatalf("untouched File renders differently:\n got %q\nwant %q", out, data)
		}
		peers := file.ManagedPeers()
		if err := file.SetManagedPeers(peers); err != nil {
			// A hand-edited file may repeat an id or key; SetManagedPeers
			// must refuse that rather than write it.
			return
		}
		out := file.Render()
		checkRendered(t, file, out, peers)
	})
}
