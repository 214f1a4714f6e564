package wgconf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
