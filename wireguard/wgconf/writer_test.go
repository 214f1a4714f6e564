package wgconf

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestWriter(t *testing.T, cfg string) *Writer {
	t.Helper()
	w, err := NewWriter(Config{Path: cfg, LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestNewWriter(t *testing.T) {
	t.Parallel()
	if _, err := NewWriter(Config{}); err == nil {
		t.Error("NewWriter accepted an empty path")
	}
	w, err := NewWriter(Config{Path: "/etc/wireguard/wg0.conf"})
	if err != nil {
		t.Fatal(err)
	}
	if w.lockPath != "/etc/wireguard/wg0.conf.lock" || w.lockTimeout != DefaultLockTimeout {
		t.Errorf("defaults: lock %s, timeout %v", w.lockPath, w.lockTimeout)
	}
}

func TestWriterChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wg0.conf")
	w := newTestWriter(t, cfg)
	p1, p2 := peerFor("1", 1), peerFor("2", 2)
	p1moved := p1
	p1moved.AllowedIPs = prefixes("10.0.9.9/32")

	// Each step runs on the file the previous steps left.
	steps := []struct {
		name        string
		do          func() (bool, error)
		wantChanged bool
		wantIDs     []string // nil: the file must not exist
	}{
		{"nothing to write into a missing file", func() (bool, error) { return w.SetManagedPeers(ctx, nil) }, false, nil},
		{"first peer creates the file", func() (bool, error) { return w.AddPeer(ctx, p1) }, true, []string{"1"}},
		{"same peer again writes nothing", func() (bool, error) { return w.AddPeer(ctx, p1) }, false, []string{"1"}},
		{"second peer", func() (bool, error) { return w.AddPeer(ctx, p2) }, true, []string{"1", "2"}},
		{"same set writes nothing", func() (bool, error) { return w.SetManagedPeers(ctx, []Peer{p2, p1}) }, false, []string{"1", "2"}},
		{"changed peer is replaced", func() (bool, error) { return w.AddPeer(ctx, p1moved) }, true, []string{"1", "2"}},
		{"remove a missing peer writes nothing", func() (bool, error) { return w.RemovePeer(ctx, "3") }, false, []string{"1", "2"}},
		{"remove", func() (bool, error) { return w.RemovePeer(ctx, "1") }, true, []string{"2"}},
		{"remove the last", func() (bool, error) { return w.RemovePeer(ctx, "2") }, true, []string{}},
		{"empty stays empty", func() (bool, error) { return w.SetManagedPeers(ctx, nil) }, false, []string{}},
	}
	for _, s := range steps {
		before, _ := os.Stat(cfg)
		changed, err := s.do()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.wantChanged {
			t.Errorf("%s: changed %v, want %v", s.name, changed, s.wantChanged)
		}
		after, statErr := os.Stat(cfg)
		if s.wantIDs == nil {
			if statErr == nil {
				t.Errorf("%s: file exists", s.name)
			}
			continue
		}
		if statErr != nil {
			t.Fatalf("%s: %v", s.name, statErr)
		}
		// No write means the same inode: the file was not even replaced.
		if !changed && before != nil && !os.SameFile(before, after) {
			t.Errorf("%s: changed false, but the file was replaced", s.name)
		}
		if after.Mode() != 0o600 {
			t.Errorf("%s: mode %v", s.name, after.Mode())
		}
		f, err := w.Read()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := peerIDs(f.ManagedPeers()); strings.Join(got, ",") != strings.Join(s.wantIDs, ",") {
			t.Errorf("%s: managed peers %q, want %q", s.name, got, s.wantIDs)
		}
	}
	if f, _ := w.Read(); f != nil && len(f.Render()) != 0 {
		t.Errorf("removing every peer from a file wgbot created leaves %q", f.Render())
	}
}

func TestWriterKeepsHandWrittenContent(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"server-iptables", "dualstack-nft", "crlf", "wgbot-written"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := filepath.Join(t.TempDir(), "wg0.conf")
			src := mustReadFile(t, filepath.Join("testdata", name+".conf"))
			writeTestFile(t, cfg, src, 0o600)
			w := newTestWriter(t, cfg)
			unmanaged := mustParse(t, src).unmanagedBytes()

			if _, err := w.SetManagedPeers(context.Background(), goldenPeers()); err != nil {
				t.Fatal(err)
			}
			if got := mustReadFile(t, cfg); !bytes.Equal(got, mustReadFile(t, filepath.Join("testdata", name+".managed.golden"))) {
				t.Errorf("written file differs from the golden file:\n%s", got)
			}
			if _, err := w.SetManagedPeers(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if got := mustReadFile(t, cfg); !bytes.Equal(got, unmanaged) {
				t.Errorf("after removing the managed peers:\n got %q\nwant %q", got, unmanaged)
			}
		})
	}
}

func TestWriterFixesModeOfUnchangedFile(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "wg0.conf")
	writeTestFile(t, cfg, mustReadFile(t, "testdata/server-iptables.conf"), 0o644)
	changed, err := newTestWriter(t, cfg).SetManagedPeers(context.Background(), nil)
	if err != nil || changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	checkFileMode(t, cfg, 0o600)
}

func TestWriterRemovesStaleTemps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wg0.conf")
	stale := []string{filepath.Join(dir, ".wg0.conf"+tempInfix+"abc"), filepath.Join(dir, ".wg0.conf"+tempInfix+"def")}
	for _, s := range stale {
		writeTestFile(t, s, []byte("half a fi"), 0o600)
	}
	// Not ours: another file's temp file, and a look-alike directory.
	others := []string{filepath.Join(dir, ".wg1.conf"+tempInfix+"abc"), filepath.Join(dir, "wg0.conf.bak")}
	for _, o := range others {
		writeTestFile(t, o, []byte("keep"), 0o600)
	}
	mkdir(t, filepath.Join(dir, ".wg0.conf"+tempInfix+"dir"))

	if _, err := newTestWriter(t, cfg).AddPeer(context.Background(), peerFor("1", 1)); err != nil {
		t.Fatal(err)
	}
	for _, s := range stale {
		if _, err := os.Lstat(s); err == nil {
			t.Errorf("stale temp file %s is still there", s)
		}
	}
	for _, o := range append(others, filepath.Join(dir, ".wg0.conf"+tempInfix+"dir")) {
		if _, err := os.Lstat(o); err != nil {
			t.Errorf("%s was removed: %v", o, err)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, cfg string)
		wantErr []string
	}{
		{"parse error names the file and the line", func(t *testing.T, cfg string) {
			writeTestFile(t, cfg, []byte("[Interface]\nListenPort = 1\nListenPort = many\n"), 0o600)
		}, []string{"parse", "wg0.conf", "line 3", "invalid ListenPort"}},
		{"config is a directory", func(t *testing.T, cfg string) {
			mkdir(t, cfg)
		}, []string{"wg0.conf", "is a directory"}},
		// A FIFO would block a plain read forever.
		{"config is a named pipe", func(t *testing.T, cfg string) {
			if err := syscall.Mkfifo(cfg, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"wg0.conf", "is a named pipe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := filepath.Join(t.TempDir(), "wg0.conf")
			tt.setup(t, cfg)
			w := newTestWriter(t, cfg)
			_, err := w.AddPeer(context.Background(), peerFor("1", 1))
			_, readErr := w.Read()
			for _, e := range []error{err, readErr} {
				if e == nil {
					t.Fatal("no error")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(e.Error(), want) {
						t.Errorf("error %q does not contain %q", e, want)
					}
				}
			}
		})
	}
}

func TestWriterThroughSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, "real"))
	real := filepath.Join(dir, "real", "wg0.conf")
	writeTestFile(t, real, mustReadFile(t, "testdata/client.conf"), 0o600)
	link := filepath.Join(dir, "wg0.conf")
	symlink(t, real, link)

	if _, err := newTestWriter(t, link).AddPeer(context.Background(), peerFor("1", 1)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("symlink replaced: %v", err)
	}
	if got := peerIDs(mustParse(t, mustReadFile(t, real)).ManagedPeers()); len(got) != 1 {
		t.Errorf("real file has managed peers %q", got)
	}
	// The lock sits next to the path as configured, never at the target.
	if _, err := os.Lstat(link + ".lock"); err != nil {
		t.Errorf("lock file: %v", err)
	}
}
