package wgconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// DefaultLockTimeout bounds the wait for the lock when Config sets none, so
// that a stuck holder turns into an error instead of a hang.
const DefaultLockTimeout = 10 * time.Second

// Config says which file a Writer changes and how it locks it.
type Config struct {
	Path        string        // the wg-quick config, e.g. /etc/wireguard/wg0.conf
	LockPath    string        // empty means DefaultLockPath(Path)
	LockTimeout time.Duration // zero means DefaultLockTimeout
}

// Writer changes one config file. Every change runs under the lock and
// replaces the file atomically, so any number of Writers, in any number of
// processes, can change the same file at once. A Writer is safe for
// concurrent use: each call takes the lock itself.
type Writer struct {
	path        string
	lockPath    string
	lockTimeout time.Duration
	hooks       *writeHooks // nil except in tests
}

// NewWriter returns a Writer for c.Path.
func NewWriter(c Config) (*Writer, error) {
	if c.Path == "" {
		return nil, errors.New("wgconf: empty config path")
	}
	if c.LockPath == "" {
		c.LockPath = DefaultLockPath(c.Path)
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	return &Writer{path: c.Path, lockPath: c.LockPath, lockTimeout: c.LockTimeout}, nil
}

// Read parses the current file without taking the lock: writes replace the
// file atomically, so it always reads one whole version. A missing file reads
// as empty.
func (w *Writer) Read() (*File, error) {
	t, err := resolveTarget(w.path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", w.path, err)
	}
	data, err := t.read()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", w.path, err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", w.path, err)
	}
	return f, nil
}

// Update is the one way to change the file: it takes the lock, reads and
// parses the file (missing means empty), lets change edit it, and writes the
// result if its bytes differ. changed reports whether it wrote. If change
// returns an error, or panics, nothing is written and the lock is released.
//
// Under the lock it also removes temp files that killed writers left, and
// sets mode 0600 on an unchanged file that has another mode.
func (w *Writer) Update(ctx context.Context, change func(*File) error) (changed bool, err error) {
	return w.UpdateThen(ctx, change, nil)
}

// UpdateThen is Update followed by after(changed), still under the lock,
// for work that must be ordered with the file across processes: the
// reconciler reads the database inside change and syncs the live device in
// after, so two reconcilers on one host can never apply an older snapshot
// over a newer one. An error from after is returned; the file stays written.
func (w *Writer) UpdateThen(ctx context.Context, change func(*File) error, after func(changed bool) error) (changed bool, err error) {
	lockCtx, cancel := context.WithTimeout(ctx, w.lockTimeout)
	unlock, err := Lock(lockCtx, w.lockPath)
	cancel()
	if err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("update %s: %w", w.path, uerr)
		}
	}()

	t, err := resolveTarget(w.path)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	if _, err := t.removeStaleTemps(); err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	old, err := t.read()
	if err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	f, err := Parse(old)
	if err != nil {
		return false, fmt.Errorf("parse %s: %w", w.path, err)
	}
	if err := change(f); err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	data := f.Render()
	if t.exists && bytes.Equal(data, old) {
		if t.perm != 0o600 {
			if err := os.Chmod(t.path, 0o600); err != nil {
				return false, fmt.Errorf("update %s: %w", w.path, err)
			}
		}
		return false, runAfter(after, false)
	}
	if !t.exists && len(data) == 0 {
		return false, runAfter(after, false) // nothing to write; the file is created on first content
	}
	if err := t.write(data, w.hooks); err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	changed = true
	return changed, runAfter(after, changed)
}

func runAfter(after func(bool) error, changed bool) error {
	if after == nil {
		return nil
	}
	return after(changed)
}

// SetManagedPeers makes the file's managed peers exactly peers. With the
// same peers as last time it writes nothing.
func (w *Writer) SetManagedPeers(ctx context.Context, peers []Peer) (changed bool, err error) {
	return w.Update(ctx, func(f *File) error { return f.SetManagedPeers(peers) })
}

// AddPeer adds p as a managed peer, or replaces the managed peer with p's ID.
func (w *Writer) AddPeer(ctx context.Context, p Peer) (changed bool, err error) {
	return w.Update(ctx, func(f *File) error {
		peers := slices.DeleteFunc(f.ManagedPeers(), func(q Peer) bool { return q.ID == p.ID })
		return f.SetManagedPeers(append(peers, p))
	})
}

// RemovePeer removes the managed peer with the given ID, if there is one.
func (w *Writer) RemovePeer(ctx context.Context, id string) (changed bool, err error) {
	return w.Update(ctx, func(f *File) error {
		peers := f.ManagedPeers()
		kept := slices.DeleteFunc(slices.Clone(peers), func(q Peer) bool { return q.ID == id })
		if len(kept) == len(peers) {
			return nil
		}
		return f.SetManagedPeers(kept)
	})
}
