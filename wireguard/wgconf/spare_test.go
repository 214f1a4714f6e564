package wgconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// spareSetup writes a file with n managed peers and returns its path and
// a Writer for it.
func spareSetup(t *testing.T, n int) (string, *Writer) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "wg0.conf")
	writeTestFile(t, cfg, []byte("[Interface]\nListenPort = 51820\n"), 0o600)
	w := newTestWriter(t, cfg)
	setPeers(t, w, n)
	return cfg, w
}

// setPeers makes the file's managed peers p0..p(n-1) and checks the file
// then holds exactly them.
func setPeers(t *testing.T, w *Writer, n int) {
	t.Helper()
	peers := make([]Peer, n)
	for i := range peers {
		peers[i] = peerFor(fmt.Sprintf("p%04d", i), i)
	}
	if _, err := w.SetManagedPeers(context.Background(), peers); err != nil {
		t.Fatal(err)
	}
	if got := mustParse(t, mustReadFile(t, w.path)).ManagedPeers(); !equalPeers(got, peers) {
		t.Fatalf("the file holds %d peers %v, want %d", len(got), peerIDs(got), n)
	}
}

// A write fills the spare, the inode the file was before the last write, and
// keeps the replaced one as the next spare: two inodes take turns. A shorter
// content than the spare held is cut to its length; the spare keeps mode
// 0600 and no temp file is left.
func TestWriterReusesSpare(t *testing.T) {
	t.Parallel()
	cfg, w := spareSetup(t, 50)
	spare := sparePath(cfg)
	for i, n := range []int{60, 3, 40, 0, 10} {
		file, was := inode(t, cfg), inode(t, spare)
		setPeers(t, w, n)
		if got := inode(t, cfg); got != was {
			t.Fatalf("write %d: the file is inode %d, want the spare %d", i, got, was)
		}
		if got := inode(t, spare); got != file {
			t.Fatalf("write %d: the spare is inode %d, want the replaced file %d", i, got, file)
		}
		if fi, err := os.Stat(spare); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("spare: %v %v", fi.Mode(), err)
		}
		if tmp := tempFiles(t, filepath.Dir(cfg)); len(tmp) > 0 {
			t.Fatalf("temp files left: %q", tmp)
		}
	}
}

// A reader that opened the file before the last write still holds that
// inode, now the spare: the next write must not overwrite it under the
// reader, in this process or in another: it takes a new file.
func TestWriterSkipsSpareHeldOpen(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"this process", "another process"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			cfg, w := spareSetup(t, 20)
			before := mustReadFile(t, cfg)
			r, err := os.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			held := inode(t, cfg)
			setPeers(t, w, 30) // the reader's inode becomes the spare
			if inode(t, sparePath(cfg)) != held {
				t.Fatal("the replaced file did not become the spare")
			}
			var child *exec.Cmd
			if where == "another process" {
				child = exec.Command("sleep", "60")
				child.Stdin = r
				if err := child.Start(); err != nil {
					t.Fatal(err)
				}
				defer child.Process.Kill()
			}
			heldPath := fmt.Sprintf("/proc/self/fd/%d", r.Fd())
			if child != nil {
				heldPath = fmt.Sprintf("/proc/%d/fd/0", child.Process.Pid)
				r.Close() // only the child holds it now
			}
			setPeers(t, w, 5)
			if inode(t, cfg) == held {
				t.Fatal("a spare held open was overwritten")
			}
			if got := mustReadFile(t, heldPath); string(got) != string(before) {
				t.Fatal("the held spare's content changed")
			}
			r.Close()
			if child != nil {
				child.Process.Kill()
				child.Wait()
			}
			if tmp := tempFiles(t, filepath.Dir(cfg)); len(tmp) > 0 {
				t.Fatalf("temp files left: %q", tmp)
			}
		})
	}
}

// A spare with another link (an operator's `ln wg0.conf wg0.conf.bak`
// before the write) is left alone: the backup keeps its content.
func TestWriterSkipsLinkedSpare(t *testing.T) {
	t.Parallel()
	cfg, w := spareSetup(t, 20)
	backup := cfg + ".bak"
	if err := os.Link(cfg, backup); err != nil {
		t.Fatal(err)
	}
	saved := mustReadFile(t, backup)
	setPeers(t, w, 25) // the backed-up inode becomes the spare, with two links
	setPeers(t, w, 2)
	setPeers(t, w, 9)
	if got := mustReadFile(t, backup); string(got) != string(saved) {
		t.Fatal("a hard link of an old wg0.conf was overwritten")
	}
}

// A write that fails after filling the spare leaves the file as it was, and
// neither the half-used spare nor a temp file behind; the next write works.
func TestWriterFailedSpareWrite(t *testing.T) {
	t.Parallel()
	cfg, w := spareSetup(t, 20)
	setPeers(t, w, 21)
	before, id := mustReadFile(t, cfg), inode(t, cfg)
	injected := errors.New("disk full")
	w.hooks = &writeHooks{beforeRename: func(tmp string) error {
		if tmp != sparePath(cfg) {
			t.Errorf("filled %s, want the spare", tmp)
		}
		return injected
	}}
	if _, err := w.SetManagedPeers(context.Background(), nil); !errors.Is(err, injected) {
		t.Fatalf("write: %v, want the injected error", err)
	}
	w.hooks = nil
	if got := mustReadFile(t, cfg); string(got) != string(before) || inode(t, cfg) != id {
		t.Fatal("the file changed")
	}
	if _, err := os.Lstat(sparePath(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half-written spare is still there: %v", err)
	}
	if tmp := tempFiles(t, filepath.Dir(cfg)); len(tmp) > 0 {
		t.Fatalf("temp files left: %q", tmp)
	}
	setPeers(t, w, 4)
}

// Cached writes into the spare write only the bytes after the part the
// spare already holds. Whatever the sequence of changes (peers added at the
// end, in the middle, replaced, removed, all removed, the hand-made part
// edited in place, the spare edited, another Writer's write in between),
// the file must always be exactly what a fresh render of the same peers
// gives: a wrong offset or a stale image shows as a byte difference.
func TestCachedWritesMatchFreshRender(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "wg0.conf")
	base := mustReadFile(t, "testdata/server-iptables.conf")
	writeTestFile(t, cfg, base, 0o600)
	w, other := newTestWriter(t, cfg), newTestWriter(t, cfg)
	var cache Cache
	model := map[string]Peer{}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	var partial int
	for step := range 600 {
		var change func(*File) error
		switch k := rng.IntN(20); {
		case k < 10: // a new peer, usually at the end
			n := 1000 + step
			if k < 3 {
				n = rng.IntN(1000) // in the middle
			}
			p := peerFor(fmt.Sprintf("%05d", n), n)
			model[p.ID] = p
			change = func(f *File) error { return f.PutManagedPeer(p) }
		case k < 12 && len(model) > 0: // a peer changes its keepalive
			id := anyKey(rng, model)
			p := model[id]
			p.PersistentKeepalive = rng.IntN(60)
			model[id] = p
			change = func(f *File) error { return f.PutManagedPeer(p) }
		case k < 17 && len(model) > 0:
			id := anyKey(rng, model)
			delete(model, id)
			change = func(f *File) error { f.RemoveManagedPeer(id); return nil }
		case k == 17: // the operator edits the hand-made part in place
			edited := bytes.Replace(mustReadFile(t, cfg), []byte("ListenPort = "), []byte("ListenPort  = "), 1)
			if err := os.WriteFile(cfg, edited, 0o600); err != nil {
				t.Fatal(err)
			}
			base = bytes.Replace(base, []byte("ListenPort = "), []byte("ListenPort  = "), 1)
			continue
		case k == 18: // someone changes a byte of the spare in place
			if sp, err := os.OpenFile(sparePath(cfg), os.O_WRONLY, 0); err == nil {
				sp.WriteAt([]byte("Z"), 0)
				sp.Close()
			}
			continue
		default: // another process's Writer writes the same peers
			if _, err := other.SetManagedPeers(ctx, sortedPeers(model)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		before := cache.spare != nil
		if _, err := w.UpdateCached(ctx, &cache, func(f *File, fresh bool) error {
			if fresh {
				return f.SetManagedPeers(sortedPeers(model))
			}
			return change(f)
		}, nil); err != nil {
			t.Fatal(err)
		}
		if before && cache.spare != nil {
			partial++
		}
		want := mustParse(t, base)
		if err := want.SetManagedPeers(sortedPeers(model)); err != nil {
			t.Fatal(err)
		}
		if got := mustReadFile(t, cfg); !bytes.Equal(got, want.Render()) {
			t.Fatalf("step %d: the file differs from a fresh render of the same peers (%d bytes, want %d)", step, len(got), len(want.Render()))
		}
	}
	if partial < 100 {
		t.Errorf("only %d of 600 writes went into a known spare: the test does not exercise partial writes", partial)
	}
}

func anyKey(rng *rand.Rand, m map[string]Peer) string {
	keys := slices.Sorted(maps.Keys(m))
	return keys[rng.IntN(len(keys))]
}

func sortedPeers(m map[string]Peer) []Peer {
	out := make([]Peer, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}
