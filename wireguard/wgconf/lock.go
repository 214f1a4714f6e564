package wgconf

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Polling bounds for a held lock. flock(2) cannot be interrupted by a
// context, so Lock polls with LOCK_NB instead of blocking; the ceiling keeps a
// waiter from sleeping long after the holder is gone.
const (
	lockPollMin = time.Millisecond
	lockPollMax = 10 * time.Millisecond
)

// DefaultLockPath returns the lock file used for configPath when none is
// configured. It sits next to the config, not in a world-writable directory
// such as /tmp, where another user could create it first or plant a symlink.
func DefaultLockPath(configPath string) string { return configPath + ".lock" }

// Lock takes an exclusive flock(2) on the file at path, creating it with mode
// 0600 if needed. The file is only ever locked, never written or renamed, so
// every process locks the same inode. Lock refuses a symlink, anything that
// is not a regular file, and a file owned by another user. It waits until the
// lock is free or ctx is done; the error then names the lock file.
//
// The returned unlock releases the lock; calling it again does nothing. The
// kernel releases the lock too when the process dies, however it dies.
func Lock(ctx context.Context, path string) (unlock func() error, err error) {
	// O_NONBLOCK keeps a FIFO planted at path from blocking the open.
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("open lock %s: refusing to follow a symlink: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := checkLockFile(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}

	start := time.Now()
	wait := lockPollMin
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err == unix.EINTR {
			continue
		}
		if err != unix.EWOULDBLOCK {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// Jitter keeps waiting processes from polling in lockstep.
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: still held by another process after %s: %w",
				path, time.Since(start).Round(time.Millisecond), context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, lockPollMax)
	}

	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			// Closing the descriptor alone would release the lock as well;
			// LOCK_UN first makes a failure visible.
			if err = errors.Join(unix.Flock(fd, unix.LOCK_UN), unix.Close(fd)); err != nil {
				err = fmt.Errorf("unlock %s: %w", path, err)
			}
		})
		return err
	}, nil
}

func checkLockFile(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("not a regular file")
	}
	// A lock file someone else owns could be held by them forever.
	if uid := unix.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("owned by uid %d, not by us (uid %d)", st.Uid, uid)
	}
	return nil
}
