package wgconf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// UpdateCached parses the file once and then edits the parsed copy in
// place: an edit that changes nothing writes nothing, a real one writes
// the same bytes a fresh parse and render would, and a hand edit or a
// failed change makes the next call parse the file again.
func TestUpdateCached(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wg0.conf")
	hand := "[Interface]\nPrivateKey = " + testKey("server") + "\n\n[Peer]\n# laptop\nPublicKey = " + testKey("hand") + "\nAllowedIPs = 10.0.0.9/32\n"
	writeTestFile(t, path, []byte(hand), 0o600)
	w, err := NewWriter(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var c Cache
	update := func(wantFresh bool, change func(*File) error) bool {
		t.Helper()
		changed, err := w.UpdateCached(ctx, &c, func(f *File, fresh bool) error {
			if fresh != wantFresh {
				t.Errorf("fresh = %v, want %v", fresh, wantFresh)
			}
			return change(f)
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}
	// wantOnDisk checks the file holds the managed peers ids, the hand-made
	// peer, and is what a fresh parse and render give back.
	wantOnDisk := func(ids ...string) {
		t.Helper()
		data := mustReadFile(t, path)
		f := mustParse(t, data)
		if got := peerIDs(f.ManagedPeers()); !slices.Equal(got, ids) {
			t.Errorf("managed peers on disk %v, want %v", got, ids)
		}
		if u := f.UnmanagedPeers(); len(u) != 1 || u[0].PublicKey != testKey("hand") {
			t.Errorf("hand-made peer lost: %v", u)
		}
		if err := f.SetManagedPeers(f.ManagedPeers()); err != nil || string(f.Render()) != string(data) {
			t.Errorf("the file is not what a fresh render gives (err %v)", err)
		}
	}

	p1, p2, p3 := peerFor("1", 1), peerFor("2", 2), peerFor("3", 3)
	if !update(true, func(f *File) error { return f.SetManagedPeers([]Peer{p1}) }) {
		t.Fatal("the first peer was not written")
	}
	wantOnDisk("1")
	before, _ := os.Stat(path)

	if update(false, func(f *File) error { return f.PutManagedPeer(p1) }) {
		t.Error("putting an equal peer wrote the file")
	}
	if update(false, func(f *File) error { return f.SetManagedPeers([]Peer{p1}) }) {
		t.Error("setting the same peers wrote the file")
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("the file was replaced although nothing changed")
	}
	if !update(false, func(f *File) error { return f.PutManagedPeer(p2) }) {
		t.Error("a new peer was not written")
	}
	wantOnDisk("1", "2")
	p2.AllowedIPs = prefixes("10.0.0.77/32")
	if !update(false, func(f *File) error { return f.PutManagedPeer(p2) }) {
		t.Error("a changed peer was not written")
	}
	if !update(false, func(f *File) error { f.RemoveManagedPeer("1"); return nil }) {
		t.Error("a removal was not written")
	}
	wantOnDisk("2")
	if update(false, func(f *File) error { f.RemoveManagedPeer("1"); return nil }) {
		t.Error("removing an absent peer wrote the file")
	}

	// An edit made and then refused is not kept: the next call parses.
	errRefused := errors.New("refused")
	if _, err := w.UpdateCached(ctx, &c, func(f *File, _ bool) error { f.RemoveManagedPeer("2"); return errRefused }, nil); !errors.Is(err, errRefused) {
		t.Fatalf("err = %v", err)
	}
	if update(true, func(*File) error { return nil }) {
		t.Error("a refused edit was written")
	}
	wantOnDisk("2")

	// A hand edit between two calls is parsed again and kept.
	data := mustReadFile(t, path)
	writeTestFile(t, path, append(data, "# added by hand\n"...), 0o600)
	if !update(true, func(f *File) error { return f.PutManagedPeer(p3) }) {
		t.Error("the peer after the hand edit was not written")
	}
	wantOnDisk("2", "3")
	if got := string(mustReadFile(t, path)); !strings.Contains(got, "# added by hand\n") {
		t.Errorf("the hand edit was lost:\n%s", got)
	}
}

// Once its managed peers are replaced, a parsed File no longer holds the
// input it was parsed from: only the lines it still writes.
func TestReplacedFileDropsItsInput(t *testing.T) {
	peers := make([]Peer, 1000)
	for i := range peers {
		peers[i] = peerFor(fmt.Sprint(i+1), i)
	}
	f := mustParse(t, nil)
	if err := f.SetManagedPeers(peers); err != nil {
		t.Fatal(err)
	}
	head := "[Interface]\nPrivateKey = " + testKey("server") + "\n# hand-made\n[Peer]\nPublicKey = " + testKey("hand") + "\nAllowedIPs = 10.0.0.9/32\n"
	g := mustParse(t, append([]byte(head), f.Render()...))
	want := head + "\n" + string(f.Render()) // the managed block after a blank line
	if err := g.SetManagedPeers(g.ManagedPeers()); err != nil {
		t.Fatal(err)
	}
	if len(g.src) > len(head) || len(g.lines) != strings.Count(head, "\n") {
		t.Errorf("the File still holds %d bytes and %d lines of input", len(g.src), len(g.lines))
	}
	if got := g.Render(); string(got) != want {
		t.Errorf("rendering changed after dropping the input")
	}
	if u := g.UnmanagedPeers(); len(u) != 1 || u[0].Line != 4 {
		t.Errorf("hand-made peers %v", u)
	}
}

// A hand edit that lands right after wgbot's own write, before the writer
// notes what it wrote, is not taken for wgbot's file: the next update
// parses the file again and keeps the edit.
func TestEditRightAfterWriteKept(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wg0.conf")
	writeTestFile(t, path, []byte("[Interface]\nPrivateKey = "+testKey("server")+"\n"), 0o600)
	w, err := NewWriter(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	edit := "\n[Peer]\n# by hand\nPublicKey = " + testKey("hand") + "\nAllowedIPs = 10.0.0.9/32\n"
	w.hooks = &writeHooks{afterRename: func(p string) {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(edit); err != nil {
			t.Fatal(err)
		}
	}}
	var c Cache
	if _, err := w.UpdateCached(ctx, &c, func(f *File, _ bool) error { return f.SetManagedPeers([]Peer{peerFor("1", 1)}) }, nil); err != nil {
		t.Fatal(err)
	}
	w.hooks = nil
	fresh := false
	if _, err := w.UpdateCached(ctx, &c, func(f *File, isFresh bool) error {
		fresh = isFresh
		return f.PutManagedPeer(peerFor("2", 2))
	}, nil); err != nil {
		t.Fatal(err)
	}
	data := string(mustReadFile(t, path))
	if !fresh || !strings.Contains(data, "# by hand") || !strings.Contains(data, testKey("hand")) {
		t.Fatalf("the edit made right after the write was lost (parsed again: %v):\n%s", fresh, data)
	}
}
