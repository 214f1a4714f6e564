package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sandboxUser runs the cluster when the sandbox runs as root: initdb and
// postgres refuse to run as root. Tests that create and delete the account
// use one of their own instead, so they never take this one from a
// sandbox running next to them.
const sandboxUser = "wgbot-sandbox"

// ownerLockPath is the flock every sandbox running as root holds while it
// looks up, creates or runs programs as account (sandboxUser, or a test's
// own): shared to use the account, exclusive to create it (or, in tests,
// to delete it).
//
// It exists because useradd is not atomic for one name: it checks that the
// name is free before it takes /etc/.pwd.lock, so several sandboxes
// creating the account at once all succeed, each rewriting the entry with a
// new uid. A sandbox that looked up the first uid then runs initdb as a uid
// no account has ("could not look up effective user ID 999"). /run is
// root's own tmpfs: no other user can plant or hold the file, and nothing
// stale survives a reboot.
func ownerLockPath(account string) string {
	return "/run/" + account + "-user.lock"
}

// errNoAccount reports that an account name is not in the user database.
var errNoAccount = errors.New("no such account")

// osUser is the account the cluster runs as when the sandbox runs as root;
// nil means the sandbox's own user.
type osUser struct {
	name     string
	uid, gid uint32
}

func (u *osUser) credential() *syscall.Credential {
	if u == nil {
		return nil
	}
	return &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}
}

// chown gives the tree at path to the cluster's user: PostgreSQL insists on
// owning its data directory.
func (u *osUser) chown(path string) error {
	if u == nil {
		return nil
	}
	err := filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.uid), int(u.gid))
	})
	if err != nil {
		return fmt.Errorf("give %s to user %s: %w", path, u.name, err)
	}
	return nil
}

// refresh looks the account up again by name, right before a program is
// run as it: the uid and gid used are the ones the user database holds
// now, and the program's own look-up of its uid (initdb's getpwuid) will
// succeed.
func (u *osUser) refresh() (*osUser, error) {
	if u == nil {
		return nil, nil
	}
	now, err := lookupAccount(u.name)
	if err != nil {
		return nil, fmt.Errorf("the private PostgreSQL runs as user %s: %w", u.name, err)
	}
	return now, nil
}

// clusterOwner picks the account the cluster in dir (data directory data)
// runs as. As root that is the system user account (sandboxUser outside
// tests), created on first use, and every directory above dir must let
// that user pass. The account stays as returned until release is called:
// the caller holds ownerLockPath shared, so no other sandbox recreates it
// meanwhile.
//
// Only when the account cannot be created does the cluster run as nobody,
// and never when data already belongs to another account: that would hand
// the cluster to a different user without saying so.
func clusterOwner(account, dir, data string, log *slog.Logger) (owner *osUser, release func(), err error) {
	if os.Geteuid() != 0 {
		return nil, func() {}, nil
	}
	var createErr error
	for range 3 {
		lock, err := lockOwner(account, syscall.LOCK_SH)
		if err != nil {
			return nil, nil, err
		}
		owner, err := lookupAccount(account)
		if err == nil {
			if err := checkPassable(owner, dir); err != nil {
				lock.Close()
				return nil, nil, err
			}
			return owner, func() { lock.Close() }, nil
		}
		lock.Close()
		if !errors.Is(err, errNoAccount) {
			return nil, nil, fmt.Errorf("find the user that runs the private PostgreSQL: %w", err)
		}
		if createErr = createAccount(account, log); createErr != nil {
			break
		}
		// Created (by us or by another sandbox): look it up again under
		// the shared lock, so it cannot change while it is used.
	}
	if createErr == nil {
		return nil, nil, fmt.Errorf("user %s was created but then vanished three times; is something deleting it?", account)
	}
	return nobodyOwner(account, dir, data, createErr, log)
}

// createAccount creates account unless it exists, holding ownerLockPath
// exclusively, so only one useradd of that name ever runs.
func createAccount(account string, log *slog.Logger) error {
	lock, err := lockOwner(account, syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer lock.Close()
	if _, err := lookupAccount(account); err == nil {
		return nil // another sandbox made it while we waited for the lock
	}
	out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", account).CombinedOutput()
	var ee *exec.ExitError
	// Exit code 9 is "username already in use": made by something that
	// does not take our lock (an operator), which is as good.
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 9) && !strings.Contains(string(out), "already exists") {
		return fmt.Errorf("useradd %s: %v: %s", account, err, strings.TrimSpace(string(out)))
	}
	if err == nil {
		log.Info("sandbox: created the system user that runs the private PostgreSQL (initdb refuses root)", "user", account)
	}
	return nil
}

// nobodyOwner is the last resort when account cannot be created: a fresh
// cluster runs as nobody. A cluster that already belongs to someone is not
// handed to nobody.
func nobodyOwner(account, dir, data string, createErr error, log *slog.Logger) (*osUser, func(), error) {
	lock, err := lockOwner(account, syscall.LOCK_SH)
	if err != nil {
		return nil, nil, err
	}
	owner, err := lookupAccount("nobody")
	if err != nil {
		lock.Close()
		return nil, nil, fmt.Errorf("find an unprivileged user to run PostgreSQL as (initdb refuses root): %w; and %w", createErr, err)
	}
	if st, err := os.Stat(data); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != owner.uid {
			lock.Close()
			return nil, nil, fmt.Errorf("could not create user %s to run the private PostgreSQL (%w), and the cluster in %s "+
				"belongs to uid %d, not to nobody: create the user (useradd --system %s) or remove %s to start over",
				account, createErr, data, sys.Uid, account, dir)
		}
	}
	if err := checkPassable(owner, dir); err != nil {
		lock.Close()
		return nil, nil, err
	}
	log.Warn("sandbox: could not create a system user; running PostgreSQL as nobody", "user", account, "err", createErr)
	return owner, func() { lock.Close() }, nil
}

// lockOwner takes account's ownerLockPath with how (syscall.LOCK_SH or
// LOCK_EX); closing the file releases it.
func lockOwner(account string, how int) (*os.File, error) {
	path := ownerLockPath(account)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// lookupAccount finds name in the user database and checks the way back:
// its uid must name it too, which is what initdb's getpwuid(geteuid())
// asks. errNoAccount means the name is not there.
func lookupAccount(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if errors.As(err, new(user.UnknownUserError)) {
		return nil, fmt.Errorf("%w: %s", errNoAccount, name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s has a non-numeric uid or gid", name)
	}
	back, err := user.LookupId(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s has uid %s, but looking that uid up fails (%w): the user database changed meanwhile", name, u.Uid, err)
	}
	if back.Username != name {
		return nil, fmt.Errorf("user %s has uid %s, but that uid names %s: give %s a uid of its own", name, u.Uid, back.Username, name)
	}
	return &osUser{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
}

// checkPassable makes sure every directory above dir lets owner pass.
func checkPassable(owner *osUser, dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if !owner.canEnter(p) {
			return fmt.Errorf("the private PostgreSQL runs as user %s (initdb refuses root), who cannot enter %s: "+
				"allow it with `chmod o+x %s`, or start the sandbox with --var in a directory other users can enter", owner.name, p, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// canEnter reports whether the user may pass through directory p.
func (u *osUser) canEnter(p string) bool {
	st, err := os.Stat(p)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := st.Mode().Perm()
	switch {
	case sys.Uid == u.uid:
		return mode&0o100 != 0
	case sys.Gid == u.gid:
		return mode&0o010 != 0
	}
	return mode&0o001 != 0
}
