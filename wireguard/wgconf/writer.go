package wgconf

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	return w.update(ctx, nil, func(f *File, _ bool) error { return change(f) }, after)
}

// ErrUnchanged, returned by an UpdateCached change, says it changed
// nothing: the file is neither rendered nor written.
var ErrUnchanged = errors.New("wgconf: unchanged")

// UpdateCached is UpdateThen without reading and parsing the file while it
// is the one c holds (same inode, size, modification and change times as
// when this Writer last read or wrote it, checked under the lock). fresh
// tells change whether the file was parsed again: on first use, after a
// hand edit or another process's write. change may edit f in place; on any
// error the cache is dropped, so the next call parses the file again.
func (w *Writer) UpdateCached(ctx context.Context, c *Cache, change func(f *File, fresh bool) error, after func(changed bool) error) (changed bool, err error) {
	return w.update(ctx, c, change, after)
}

func (w *Writer) update(ctx context.Context, c *Cache, change func(*File, bool) error, after func(changed bool) error) (changed bool, err error) {
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
	if c != nil {
		defer func() {
			if err != nil {
				c.drop()
			}
		}()
	}

	t, err := resolveTarget(w.path)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	if _, err := t.removeStaleTemps(); err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	var old []byte
	var f *File
	fresh := true
	if id, ok := statID(t); c != nil && ok && c.file != nil && c.id == id {
		f, fresh = c.file, false
	} else {
		if old, err = t.read(); err != nil {
			return false, fmt.Errorf("update %s: %w", w.path, err)
		}
		if f, err = Parse(old); err != nil {
			return false, fmt.Errorf("parse %s: %w", w.path, err)
		}
		if c != nil {
			// Stat after the read: a write landing between the two is
			// then seen as a change next time, never missed.
			c.drop()
			c.file = f
			c.id, _ = statID(t)
		}
	}
	if err := change(f, fresh); errors.Is(err, ErrUnchanged) {
		return false, runAfter(after, false)
	} else if err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	// A File whose managed peers were set is streamed from its image to
	// the file, and compared with what was read piece by piece: at 50,000
	// peers that saves building an 8 MB copy for every write. Otherwise
	// the bytes are rendered.
	var img *image
	var data []byte
	if f.replaced {
		img = f.image()
	} else {
		data = f.Render()
	}
	// Unchanged: a cached File nobody edited, or the same bytes as read.
	if t.exists && (!fresh && !f.edited || fresh && (img != nil && img.equal(old) || img == nil && bytes.Equal(data, old))) {
		f.edited = false
		if t.perm != 0o600 {
			if err := os.Chmod(t.path, 0o600); err != nil {
				return false, fmt.Errorf("update %s: %w", w.path, err)
			}
			if c != nil {
				c.id, _ = statID(t)
			}
		}
		return false, runAfter(after, false)
	}
	if !t.exists && (img == nil && len(data) == 0 || img != nil && img.equal(nil)) {
		return false, runAfter(after, false) // nothing to write; the file is created on first content
	}
	fill := bytesOf(data)
	if img != nil {
		fill = func(out *os.File, spare fileID) error {
			// The spare holds what c.spare says if it is still the file
			// that became the spare: only the bytes after the part both
			// share are written. An issuance at 50,000 peers usually
			// appends one block at the end, so that is a few hundred bytes.
			var off int64
			if c != nil && c.spare != nil && spare != (fileID{}) && spare == c.spareID {
				off = commonPrefix(c.spare, img)
				if _, err := out.Seek(off, io.SeekStart); err != nil {
					return err
				}
			}
			b := bufio.NewWriterSize(out, 64<<10)
			img.writeFrom(b, off)
			return b.Flush()
		}
	}
	was := fileID{}
	if c != nil {
		was = c.id
	}
	res, err := t.writeID(fill, w.hooks, true)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", w.path, err)
	}
	f.edited = false
	if c != nil {
		// The replaced file is the spare now. Its image is the one this
		// Writer had of it if it was that file unchanged (the cache held,
		// and its content was not touched before it was linked aside).
		c.spare, c.spareID = nil, fileID{}
		if c.live != nil && !fresh && res.spare != (fileID{}) && sameContent(res.spare, was) {
			c.spare, c.spareID = c.live, res.spare
		}
		// The file in place is ours only if it is the one just written (a
		// rename changes only its change time): a hand edit landing right
		// after the rename must be read next time, not taken for ours.
		c.file, c.live = f, img
		if c.id, _ = statID(t); !sameContent(c.id, res.id) {
			c.drop()
		}
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
