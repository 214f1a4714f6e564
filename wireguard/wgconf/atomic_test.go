package wgconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	data := []byte("[Interface]\nListenPort = 51820\n")
	old := []byte("old content\n")
	tests := []struct {
		name string
		// setup prepares dir and returns the path to write and the real file
		// that must receive the data ("" when the write must be refused).
		setup   func(t *testing.T, dir string) (path, real string)
		wantErr string
	}{
		{"new file", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "wg0.conf")
			return p, p
		}, ""},
		{"existing 0644 file becomes 0600", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "wg0.conf")
			writeTestFile(t, p, old, 0o644)
			return p, p
		}, ""},
		{"relative symlink: the target is replaced, the link kept", func(t *testing.T, dir string) (string, string) {
			mkdir(t, filepath.Join(dir, "real"))
			real := filepath.Join(dir, "real", "wg0.conf")
			writeTestFile(t, real, old, 0o600)
			link := filepath.Join(dir, "wg0.conf")
			symlink(t, "real/wg0.conf", link)
			return link, real
		}, ""},
		{"chain of symlinks", func(t *testing.T, dir string) (string, string) {
			real := filepath.Join(dir, "real.conf")
			writeTestFile(t, real, old, 0o600)
			symlink(t, real, filepath.Join(dir, "b.conf"))
			symlink(t, filepath.Join(dir, "b.conf"), filepath.Join(dir, "a.conf"))
			return filepath.Join(dir, "a.conf"), real
		}, ""},
		{"symlinked directory, new file", func(t *testing.T, dir string) (string, string) {
			mkdir(t, filepath.Join(dir, "real"))
			symlink(t, filepath.Join(dir, "real"), filepath.Join(dir, "etc"))
			return filepath.Join(dir, "etc", "wg0.conf"), filepath.Join(dir, "real", "wg0.conf")
		}, ""},
		{"directory", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "wg0.conf")
			mkdir(t, p)
			return p, ""
		}, "is a directory, not a regular file"},
		{"named pipe", func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "wg0.conf")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p, ""
		}, "is a named pipe, not a regular file"},
		{"symlink to a directory", func(t *testing.T, dir string) (string, string) {
			mkdir(t, filepath.Join(dir, "real"))
			symlink(t, filepath.Join(dir, "real"), filepath.Join(dir, "wg0.conf"))
			return filepath.Join(dir, "wg0.conf"), ""
		}, "not a regular file"},
		{"dangling symlink", func(t *testing.T, dir string) (string, string) {
			symlink(t, filepath.Join(dir, "missing"), filepath.Join(dir, "wg0.conf"))
			return filepath.Join(dir, "wg0.conf"), ""
		}, "resolve symlinks"},
		{"missing directory", func(t *testing.T, dir string) (string, string) {
			return filepath.Join(dir, "nope", "wg0.conf"), ""
		}, "resolve directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path, real := tt.setup(t, dir)
			before, _ := os.Lstat(path)

			err := WriteFileAtomic(path, data)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("got %v, want an error naming %s containing %q", err, path, tt.wantErr)
				}
				if after, _ := os.Lstat(path); before != nil && (after == nil || !os.SameFile(before, after)) {
					t.Error("a refused write replaced the path")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if got := mustReadFile(t, real); string(got) != string(data) {
					t.Errorf("%s holds %q", real, got)
				}
				checkFileMode(t, real, 0o600)
				if before != nil && before.Mode()&os.ModeSymlink != 0 {
					if after, err := os.Lstat(path); err != nil || after.Mode()&os.ModeSymlink == 0 {
						t.Errorf("the symlink %s was replaced by a file", path)
					}
				}
			}
			// No temp file anywhere under dir.
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && strings.Contains(d.Name(), tempInfix) {
					t.Errorf("temp file left: %s", p)
				}
				return nil
			})
		})
	}
}

func TestWriteFileAtomicKeepsOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	p := filepath.Join(t.TempDir(), "wg0.conf")
	writeTestFile(t, p, []byte("old\n"), 0o640)
	if err := os.Chown(p, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4242 || st.Gid != 4343 || fi.Mode() != 0o600 {
		t.Errorf("after write: owner %d:%d mode %v, want 4242:4343 -rw-------", st.Uid, st.Gid, fi.Mode())
	}
}

// TestFailedWriteKeepsOldFile fails a write at its last step before the
// rename, when the temp file is complete, and checks nothing is left of it.
func TestFailedWriteKeepsOldFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "wg0.conf")
	old := mustReadFile(t, "testdata/server-iptables.conf")
	writeTestFile(t, p, old, 0o600)
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := resolveTarget(p)
	if err != nil {
		t.Fatal(err)
	}
	injected := errors.New("disk full")
	var sawTemp string
	_, err = tgt.writeID(bytesOf([]byte("new")), &writeHooks{beforeRename: func(tmp string) error {
		sawTemp = tmp
		if got, _ := os.ReadFile(tmp); string(got) != "new" {
			t.Errorf("temp file holds %q before the rename", got)
		}
		return injected
	}}, false)
	if !errors.Is(err, injected) {
		t.Fatalf("write: got %v, want the injected error", err)
	}
	if filepath.Dir(sawTemp) != dir || !strings.HasPrefix(filepath.Base(sawTemp), ".wg0.conf"+tempInfix) {
		t.Errorf("temp file %s is not a hidden wgbot temp file next to the config", sawTemp)
	}
	if got := mustReadFile(t, p); string(got) != string(old) {
		t.Error("the old file changed")
	}
	if after, err := os.Stat(p); err != nil || !os.SameFile(before, after) {
		t.Error("the old file was replaced")
	}
	if tmp := tempFiles(t, dir); len(tmp) > 0 {
		t.Errorf("temp files left: %q", tmp)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, oldname, newname string) {
	t.Helper()
	if err := os.Symlink(oldname, newname); err != nil {
		t.Fatal(err)
	}
}
