package wgconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// tempInfix marks wgbot's temp files: ".wg0.conf.wgbot-tmp-<random>" next to
// wg0.conf. A process killed between creating and renaming one leaves it
// behind; Writer removes such leftovers under the lock.
const tempInfix = ".wgbot-tmp-"

// spareInfix names the spare: ".wg0.conf.wgbot-spare", the inode wg0.conf
// was before Writer's last write. Filling a file whose blocks are already
// allocated and then renaming it into place costs a fraction of filling a
// new one (2.7 ms against 10.5 ms for 8 MB, fsync included, on this
// project's test machine), so Writer reuses it when it safely can; see
// openSpare.
const spareInfix = ".wgbot-spare"

// writeHooks lets tests make a write fail at a chosen point.
type writeHooks struct {
	// beforeRename runs when the temp file is complete and synced, just
	// before it replaces the target; an error aborts the write.
	beforeRename func(tmpPath string) error
	// afterRename runs right after the new file took the target's place,
	// where someone else may edit it before the writer looks again.
	afterRename func(path string)
}

// target is a config file with its symlinks resolved.
type target struct {
	path     string // symlinks resolved
	exists   bool
	uid, gid int
	perm     fs.FileMode
}

// WriteFileAtomic replaces the file at path with data so that a reader, or a
// crash at any moment, sees either the old or the new content whole. Symlinks
// are resolved and the real file is replaced; anything but a regular file is
// refused. The result has mode 0600 and keeps the old file's owner. On error
// the old file is untouched and no temp file remains.
//
// It takes no lock: concurrent writers must hold Lock, as Writer does.
func WriteFileAtomic(path string, data []byte) error {
	t, err := resolveTarget(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = t.writeID(bytesOf(data), nil, false)
	return err
}

// fillFunc writes a new file's content to f. spare is the identity f had
// when it was opened if f is the reused spare, or zero if f is new and
// empty: a filler that knows what the spare holds may then write only what
// differs, from f's offset on.
type fillFunc func(f *os.File, spare fileID) error

// bytesOf fills a file with data.
func bytesOf(data []byte) fillFunc {
	return func(f *os.File, _ fileID) error {
		_, err := f.Write(data)
		return err
	}
}

// written is the outcome of writeID.
type written struct {
	// id is the new file's identity before it took the target's place, so
	// the caller can tell its own file from an edit that landed right
	// after the rename.
	id fileID
	// spare is the identity of the file replaced, as the spare; zero if
	// there is none.
	spare fileID
}

func resolveTarget(path string) (target, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		dir, err := filepath.EvalSymlinks(filepath.Dir(path))
		if err != nil {
			return target{}, fmt.Errorf("resolve directory: %w", err)
		}
		return target{path: filepath.Join(dir, filepath.Base(path))}, nil
	} else if err != nil {
		return target{}, err
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return target{}, fmt.Errorf("resolve symlinks: %w", err)
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return target{}, err
	}
	if !fi.Mode().IsRegular() {
		return target{}, fmt.Errorf("refusing to replace %s: it is %s, not a regular file", resolved, describeType(fi.Mode()))
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return target{}, fmt.Errorf("stat %s: no owner information", resolved)
	}
	return target{path: resolved, exists: true, uid: int(st.Uid), gid: int(st.Gid), perm: fi.Mode().Perm()}, nil
}

func describeType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "of type " + m.Type().String()
}

// read returns the target's content, or nil if it does not exist yet.
func (t target) read() ([]byte, error) {
	if !t.exists {
		return nil, nil
	}
	// O_NONBLOCK and O_NOFOLLOW: should the checked file be swapped for a
	// FIFO or a symlink meanwhile, fail instead of hanging or following it.
	f, err := os.OpenFile(t.path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file", t.path, describeType(fi.Mode()))
	}
	return io.ReadAll(f)
}

// writeID replaces the target with a file that fill writes. With spare, it
// fills the spare when openSpare allows and keeps the replaced file as the
// next spare; otherwise, and always without spare, a new temp file.
func (t target) writeID(fill fillFunc, hooks *writeHooks, spare bool) (written, error) {
	var out written
	dir := filepath.Dir(t.path)
	var tmp string
	var f *os.File
	var spareID fileID
	if spare && t.exists {
		tmp, f, spareID = t.openSpare()
	}
	if f == nil {
		var err error
		if tmp, f, err = createTemp(dir, tempPrefix(t.path)); err != nil {
			return out, fmt.Errorf("write %s: %w", t.path, err)
		}
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close() // may already be closed; the temp file goes anyway
			os.Remove(tmp)
		}
	}()

	if err := fill(f, spareID); err != nil {
		return out, fmt.Errorf("write %s: %w", tmp, err)
	}
	// A reused spare may be longer than what was just written.
	if end, err := f.Seek(0, io.SeekCurrent); err != nil {
		return out, fmt.Errorf("write %s: %w", tmp, err)
	} else if err := f.Truncate(end); err != nil {
		return out, fmt.Errorf("truncate %s: %w", tmp, err)
	}
	if t.exists {
		fi, err := f.Stat()
		if err != nil {
			return out, fmt.Errorf("stat %s: %w", tmp, err)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != t.uid || int(st.Gid) != t.gid {
			if err := f.Chown(t.uid, t.gid); err != nil {
				return out, fmt.Errorf("keep owner %d:%d of %s: %w", t.uid, t.gid, t.path, err)
			}
		}
	}
	// Explicit, because the umask may have narrowed the mode OpenFile asked for.
	if err := f.Chmod(0o600); err != nil {
		return out, fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return out, fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil { // releases the spare's lease
		return out, fmt.Errorf("close %s: %w", tmp, err)
	}
	out.id, _ = statID(target{path: tmp})
	if hooks != nil && hooks.beforeRename != nil {
		if err := hooks.beforeRename(tmp); err != nil {
			return out, fmt.Errorf("write %s: %w", t.path, err)
		}
	}
	// The file being replaced stays linked under a temp name, to become the
	// spare once the new one is in place. Without it (no hard links here)
	// the next write simply starts a new file.
	keep := ""
	if spare && t.exists {
		keep = filepath.Join(dir, tempPrefix(t.path)+"old-"+strconv.FormatUint(rand.Uint64(), 36))
		if os.Link(t.path, keep) != nil {
			keep = ""
		}
	}
	if err := os.Rename(tmp, t.path); err != nil {
		if keep != "" {
			os.Remove(keep)
		}
		return out, fmt.Errorf("replace %s: %w", t.path, err)
	}
	renamed = true
	if keep != "" {
		if os.Rename(keep, sparePath(t.path)) != nil {
			os.Remove(keep)
		} else {
			out.spare, _ = statID(target{path: sparePath(t.path)})
		}
	}
	if hooks != nil && hooks.afterRename != nil {
		hooks.afterRename(t.path)
	}
	// The rename is durable only once the directory is synced.
	if err := syncDir(dir); err != nil {
		return out, fmt.Errorf("replace %s: %w", t.path, err)
	}
	return out, nil
}

// openSpare opens the spare for overwriting, or returns nil when it must not
// be reused: it is missing, not a regular file with one link, not owned like
// the target with mode 0600, or open anywhere else. That last test is a
// write lease (F_SETLEASE), which the kernel grants only while no one else
// has the file open, and which then holds off anyone opening it until it is
// released when the file is closed. So a reader that opened wg0.conf just
// before the previous write, and still reads it as the spare, never sees
// it overwritten: that write takes a new temp file instead.
func (t target) openSpare() (string, *os.File, fileID) {
	path := sparePath(t.path)
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", nil, fileID{}
	}
	if !writeLease(f) {
		f.Close()
		return "", nil, fileID{}
	}
	// Stat under the lease: no one can change the file from here on.
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return "", nil, fileID{}
	}
	id, ok := idOf(fi)
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() || st.Nlink != 1 || int(st.Uid) != t.uid || int(st.Gid) != t.gid || fi.Mode().Perm() != 0o600 {
		f.Close()
		return "", nil, fileID{}
	}
	return path, f, id
}

// writeLease takes a write lease on f, held until f is closed.
func writeLease(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { _, lerr = unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_WRLCK) }); err != nil {
		return false
	}
	return lerr == nil
}

func sparePath(targetPath string) string {
	return filepath.Join(filepath.Dir(targetPath), "."+filepath.Base(targetPath)+spareInfix)
}

func tempPrefix(targetPath string) string { return "." + filepath.Base(targetPath) + tempInfix }

func createTemp(dir, prefix string) (string, *os.File, error) {
	for range 10 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("create temp file: %w", err)
		}
		return name, f, nil
	}
	return "", nil, fmt.Errorf("create temp file in %s: too many name collisions", dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// removeStaleTemps deletes temp files that writers of this target left when
// they were killed. Only call it holding the lock: then no temp file can
// belong to a live writer.
func (t target) removeStaleTemps() (removed int, err error) {
	dir := filepath.Dir(t.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", dir, err)
	}
	prefix := tempPrefix(t.path)
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("remove stale temp files: %w", errors.Join(errs...))
	}
	return removed, nil
}
