package wgconf

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLockRefusesUnsafeLockFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		plant   func(t *testing.T, lockPath, victim string)
		wantErr string
		root    bool
	}{
		{"symlink to a missing file", func(t *testing.T, lockPath, victim string) {
			if err := os.Symlink(victim, lockPath); err != nil {
				t.Fatal(err)
			}
		}, "refusing to follow a symlink", false},
		{"symlink to an existing file", func(t *testing.T, lockPath, victim string) {
			writeTestFile(t, victim, []byte("precious"), 0o644)
			if err := os.Symlink(victim, lockPath); err != nil {
				t.Fatal(err)
			}
		}, "refusing to follow a symlink", false},
		{"directory", func(t *testing.T, lockPath, _ string) {
			if err := os.Mkdir(lockPath, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is a directory", false},
		{"named pipe", func(t *testing.T, lockPath, _ string) {
			if err := syscall.Mkfifo(lockPath, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file", false},
		{"file owned by another user", func(t *testing.T, lockPath, _ string) {
			writeTestFile(t, lockPath, nil, 0o666)
			if err := os.Chown(lockPath, 4242, 4242); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 4242", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			dir := t.TempDir()
			lockPath := filepath.Join(dir, "wg0.conf.lock")
			victim := filepath.Join(dir, "victim")
			tt.plant(t, lockPath, victim)
			victimBefore, _ := os.ReadFile(victim)

			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			unlock, err := Lock(ctx, lockPath)
			if err == nil {
				unlock()
				t.Fatal("Lock succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), lockPath) {
				t.Errorf("error %q: want it to name %s and contain %q", err, lockPath, tt.wantErr)
			}
			if victimAfter, _ := os.ReadFile(victim); string(victimAfter) != string(victimBefore) {
				t.Errorf("symlink target changed: %q", victimAfter)
			}

			// A Writer refuses the same way and leaves the config alone.
			cfg := filepath.Join(dir, "wg0.conf")
			writeTestFile(t, cfg, []byte("[Interface]\n"), 0o600)
			w, err := NewWriter(Config{Path: cfg, LockPath: lockPath})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.AddPeer(ctx, peerFor("1", 1)); err == nil || !strings.Contains(err.Error(), lockPath) {
				t.Errorf("AddPeer error %v: want it to name %s", err, lockPath)
			}
			if got := mustReadFile(t, cfg); string(got) != "[Interface]\n" {
				t.Errorf("config changed: %q", got)
			}
		})
	}
}

func TestLockFile(t *testing.T) {
	t.Parallel()
	lockPath := filepath.Join(t.TempDir(), "wg0.conf.lock")
	unlock, err := Lock(context.Background(), lockPath)
	if err != nil {
		t.Fatal(err)
	}
	checkFileMode(t, lockPath, 0o600)
	before, err := os.Stat(lockPath)
	if err != nil {
		t.Fatal(err)
	}

	// flock belongs to an open file description, so a second Lock in the
	// same process waits too: goroutines are serialised like processes.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, lockPath); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), lockPath) {
		t.Errorf("second Lock while held: got %v, want a deadline error naming %s", err, lockPath)
	}

	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	unlock2, err := Lock(context.Background(), lockPath)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	defer unlock2()
	after, err := os.Stat(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("the lock file was replaced; every process must lock the same inode")
	}
}

func TestLockHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "wg0.conf")
	initial := mustReadFile(t, "testdata/server-iptables.conf")
	writeTestFile(t, cfg, initial, 0o600)
	lockPath := DefaultLockPath(cfg)
	holder := startChild(t, "holder", cfg, 0)
	holder.waitLine(t, "locked")

	t.Run("times out with an error naming the lock file", func(t *testing.T) {
		w, err := NewWriter(Config{Path: cfg, LockTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.AddPeer(context.Background(), peerFor("1", 1))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("AddPeer: got %v, want a deadline error", err)
		}
		if !strings.Contains(err.Error(), lockPath) || !strings.Contains(err.Error(), "still held by another process") {
			t.Errorf("error %q does not say that %s is held", err, lockPath)
		}
		if got := mustReadFile(t, cfg); string(got) != string(initial) {
			t.Error("config changed without the lock")
		}
	})

	t.Run("gives up when the context is cancelled", func(t *testing.T) {
		w, err := NewWriter(Config{Path: cfg, LockTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := w.AddPeer(ctx, peerFor("1", 1)); !errors.Is(err, context.Canceled) {
			t.Errorf("AddPeer: got %v, want context.Canceled", err)
		}
	})

	t.Run("waits, then writes once the holder lets go", func(t *testing.T) {
		w, err := NewWriter(Config{Path: cfg, LockTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			changed bool
			err     error
		}
		done := make(chan result, 1)
		go func() {
			changed, err := w.AddPeer(context.Background(), peerFor("1", 1))
			done <- result{changed, err}
		}()
		select {
		case r := <-done:
			t.Fatalf("AddPeer returned %+v while another process held the lock", r)
		case <-time.After(300 * time.Millisecond):
		}
		holder.stdin.Close() // the holder unlocks and exits
		select {
		case r := <-done:
			if r.err != nil || !r.changed {
				t.Fatalf("AddPeer after release: changed %v, err %v", r.changed, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("AddPeer still waiting 10s after the holder let go")
		}
		holder.wait(t)
		if got := peerIDs(mustParse(t, mustReadFile(t, cfg)).ManagedPeers()); len(got) != 1 || got[0] != "1" {
			t.Errorf("managed peers %q, want [1]", got)
		}
	})
}

// TestLockReleasedOnEveryPath fails an Update in every way it can fail and
// checks that the lock is free afterwards and the file untouched.
func TestLockReleasedOnEveryPath(t *testing.T) {
	t.Parallel()
	valid := mustReadFile(t, "testdata/server-iptables.conf")
	errChange := errors.New("change failed")
	tests := []struct {
		name    string
		content []byte
		hooks   *writeHooks
		change  func(*File) error
		wantErr error  // checked with errors.Is when set
		wantMsg string // checked with strings.Contains when set
		panics  bool
	}{
		{name: "change returns an error", content: valid, change: func(*File) error { return errChange }, wantErr: errChange},
		{name: "change panics", content: valid, change: func(*File) error { panic("boom") }, panics: true},
		{name: "invalid peers", content: valid, change: func(f *File) error { return f.SetManagedPeers([]Peer{{ID: "x"}}) }, wantMsg: "invalid PublicKey"},
		{name: "file does not parse", content: []byte("[Interface]\nbogus\n"), change: func(*File) error { return nil }, wantMsg: "line 2"},
		{name: "write fails", content: valid, hooks: &writeHooks{beforeRename: func(string) error { return errChange }},
			change: func(f *File) error { return f.SetManagedPeers([]Peer{peerFor("1", 1)}) }, wantErr: errChange},
		{name: "success", content: valid, change: func(f *File) error { return f.SetManagedPeers([]Peer{peerFor("1", 1)}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "wg0.conf")
			writeTestFile(t, cfg, tt.content, 0o600)
			w, err := NewWriter(Config{Path: cfg, LockTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			w.hooks = tt.hooks

			var recovered any
			func() {
				defer func() { recovered = recover() }()
				_, err = w.Update(context.Background(), tt.change)
			}()
			switch {
			case tt.panics:
				if recovered != "boom" {
					t.Fatalf("panic: got %v, want it to reach the caller", recovered)
				}
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Update: got %v, want %v", err, tt.wantErr)
			case tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)):
				t.Errorf("Update: got %v, want an error containing %q", err, tt.wantMsg)
			case tt.wantErr == nil && tt.wantMsg == "" && err != nil:
				t.Errorf("Update: %v", err)
			}
			if tt.wantErr != nil || tt.wantMsg != "" || tt.panics {
				if got := mustReadFile(t, cfg); string(got) != string(tt.content) {
					t.Errorf("a failed Update changed the file")
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			unlock, err := Lock(ctx, DefaultLockPath(cfg))
			if err != nil {
				t.Fatalf("lock still held after the Update: %v", err)
			}
			unlock()
			if tmp := tempFiles(t, dir); len(tmp) > 0 {
				t.Errorf("temp files left: %q", tmp)
			}
		})
	}
}
