package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private PostgreSQL server for the sandbox: its files live in
// one directory, it listens only on a loopback port, and it needs a password
// kept in that directory, so other users of the machine cannot reach it.
//
// Files under the directory:
//
//	data/          the cluster (initdb)
//	password       the superuser's password, 0600
//	postgres.log   the server's log
//	initdb.log     the log of the first run
type Cluster struct {
	dir     string
	name    string
	url     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the server process has exited
	waitErr error         // set before exited is closed
	log     *slog.Logger
}

// clusterDatabase and clusterRole are what wgbot uses in the private cluster.
const (
	clusterDatabase = "wgbot"
	clusterRole     = "wgbot"
)

// debianPostgresRoot is where Debian installs each PostgreSQL major version's
// server programs; they are not on PATH there.
const debianPostgresRoot = "/usr/lib/postgresql"

// sandboxUser runs the cluster when the sandbox runs as root: initdb and
// postgres refuse to run as root.
const sandboxUser = "wgbot-sandbox"

// ClusterName is the cluster_name of the private cluster in dir. PostgreSQL
// puts it in every one of its processes' titles, so
// `pgrep -f <ClusterName(dir)>` finds them all, including the background
// workers whose command lines do not name the data directory.
func ClusterName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return "wgbot-sandbox-" + hex.EncodeToString(sum[:6])
}

// StartCluster starts the private cluster in dir, creating it on first use,
// and waits until it accepts connections. Stop it with Stop. If an earlier
// sandbox was killed and left this cluster running, that server is stopped
// first.
func StartCluster(ctx context.Context, dir string, log *slog.Logger) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	// Parents are made passable (not listable) for a cluster that runs as
	// another user; the cluster's own directory is private.
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return nil, fmt.Errorf("create the cluster directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create the cluster directory: %w", err)
	}
	existing, _ := os.ReadFile(filepath.Join(data, "PG_VERSION"))
	bin, err := findServerBinaries(strings.TrimSpace(string(existing)))
	if err != nil {
		return nil, err
	}
	owner, err := clusterOwner(dir, log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, name: ClusterName(dir), exited: make(chan struct{}), log: log}
	if err := stopLeftover(data, log); err != nil {
		return nil, err
	}
	if len(existing) == 0 {
		if err := c.initdb(ctx, bin, owner); err != nil {
			return nil, err
		}
	}
	password, err := os.ReadFile(filepath.Join(dir, "password"))
	if err != nil {
		return nil, fmt.Errorf("read the cluster's password: %w (to start over with an empty database, remove %s)", err, dir)
	}
	if err := owner.chown(dir); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := c.start(bin, owner, port); err != nil {
		return nil, err
	}
	admin := clusterURL(strings.TrimSpace(string(password)), port, "postgres")
	if err := c.waitReady(ctx, admin); err != nil {
		c.Stop()
		return nil, err
	}
	if err := createDatabase(ctx, admin, clusterDatabase); err != nil {
		c.Stop()
		return nil, err
	}
	c.url = clusterURL(strings.TrimSpace(string(password)), port, clusterDatabase)
	return c, nil
}

// URL is the connection URL of the cluster's wgbot database.
func (c *Cluster) URL() string { return c.url }

// Name is the cluster_name of the cluster; see ClusterName.
func (c *Cluster) Name() string { return c.name }

// PID is the server's (the postmaster's) process id.
func (c *Cluster) PID() int { return c.cmd.Process.Pid }

// Stop shuts the server down the fast way (sessions are ended, data is
// checkpointed) and waits for it and all its processes to exit. It is safe
// to call more than once.
func (c *Cluster) Stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	// The postmaster exits only after all its children have; waiting for it
	// is waiting for them.
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 30 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		_ = c.cmd.Process.Signal(step.sig)
		select {
		case <-c.exited:
			return nil
		case <-time.After(step.wait):
			c.log.Warn("sandbox: PostgreSQL did not stop in time; trying a harder signal", "after", step.sig.String())
		}
	}
	return fmt.Errorf("PostgreSQL (pid %d) did not stop; see %s", c.cmd.Process.Pid, filepath.Join(c.dir, "postgres.log"))
}

// initdb creates the cluster with a fresh random password for its superuser.
func (c *Cluster) initdb(ctx context.Context, bin string, owner *osUser) error {
	// initdb writes into data.new, renamed to data once it is complete: an
	// interrupted initdb leaves only data.new, which the next start removes,
	// and a data directory without PG_VERSION never held a working cluster.
	data, fresh := filepath.Join(c.dir, "data"), filepath.Join(c.dir, "data.new")
	for _, dir := range []string{data, fresh} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove the unfinished cluster %s: %w", dir, err)
		}
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	password := hex.EncodeToString(secret)
	if err := os.WriteFile(filepath.Join(c.dir, "password"), []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("store the cluster's password: %w", err)
	}
	pwfile := filepath.Join(c.dir, "initdb.pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	if err := owner.chown(c.dir); err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, "initdb.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	c.log.Info("sandbox: creating a private PostgreSQL cluster", "dir", data)
	// -N skips fsync: a sandbox's first run should take a second, and a
	// cluster lost to a power cut is recreated by removing the directory.
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", fresh, "-U", clusterRole, "--pwfile", pwfile,
		"-A", "scram-sha-256", "-E", "UTF8", "--locale", "C", "-N")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: owner.credential()}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb failed (%v):\n%s", err, tail(logPath, 15))
	}
	if err := os.Rename(fresh, data); err != nil {
		return fmt.Errorf("finish the new cluster: %w", err)
	}
	return nil
}

// start runs postgres as a child of the sandbox (see serverProcAttr).
func (c *Cluster) start(bin string, owner *osUser, port int) error {
	logPath := filepath.Join(c.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := owner.chown(logPath); err != nil {
		logFile.Close()
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(c.dir, "data"),
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		// No Unix socket: its path length is limited and a TCP port with a
		// password is reachable from any working directory.
		"-c", "unix_socket_directories=",
		"-c", "cluster_name="+c.name)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = serverEnv()
	cmd.SysProcAttr = serverProcAttr(owner.credential())
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = cmd
	go func() {
		c.waitErr = cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	c.log.Info("sandbox: PostgreSQL starting", "port", port, "pid", cmd.Process.Pid, "log", logPath)
	return nil
}

// waitReady waits until the server accepts connections, or reports why it
// never will.
func (c *Cluster) waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	logPath := filepath.Join(c.dir, "postgres.log")
	for {
		attempt, stop := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attempt, url)
		stop()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("PostgreSQL exited at start (%v):\n%s", c.waitErr, tail(logPath, 15))
		case <-ctx.Done():
			return fmt.Errorf("PostgreSQL did not accept connections within a minute (%v); see %s", err, logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to the private cluster: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func clusterURL(password string, port int, database string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(clusterRole, password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// stopLeftover stops a server an earlier sandbox left running on this data
// directory (it was killed before it could stop it): the new one could not
// start next to it.
func stopLeftover(data string, log *slog.Logger) error {
	raw, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(data)) {
		return nil // gone, or the pid now belongs to another program
	}
	log.Warn("sandbox: stopping a PostgreSQL left running by an earlier sandbox", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("a PostgreSQL server (pid %d) still runs on %s; stop it (kill %d) and start the sandbox again", pid, data, pid)
}

// findServerBinaries returns the directory holding initdb and postgres:
// for an existing cluster the same major version, else PATH, else the newest
// version Debian installed.
func findServerBinaries(version string) (string, error) {
	has := func(dir string) bool {
		for _, prog := range []string{"initdb", "postgres"} {
			if st, err := os.Stat(filepath.Join(dir, prog)); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if version != "" {
		if dir := filepath.Join(debianPostgresRoot, version, "bin"); has(dir) {
			return dir, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(initdb)) {
		return filepath.Dir(initdb), nil
	}
	entries, _ := os.ReadDir(debianPostgresRoot)
	var versions []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && has(filepath.Join(debianPostgresRoot, e.Name(), "bin")) {
			versions = append(versions, n)
		}
	}
	if len(versions) == 0 {
		return "", errors.New("PostgreSQL's server programs (initdb, postgres) are not on PATH nor in " + debianPostgresRoot +
			"/<version>/bin: install the Debian package `postgresql` (sudo apt-get install postgresql), " +
			"or set DATABASE_URL to a PostgreSQL server the sandbox may use")
	}
	return filepath.Join(debianPostgresRoot, strconv.Itoa(slices.Max(versions)), "bin"), nil
}

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

// clusterOwner picks the account the cluster runs as. As root that is the
// system user wgbot-sandbox, created on first use (nobody if it cannot be),
// and every directory above dir must let that user pass.
func clusterOwner(dir string, log *slog.Logger) (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(sandboxUser)
	if err != nil {
		out, addErr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", sandboxUser).CombinedOutput()
		if addErr == nil {
			log.Info("sandbox: created the system user that runs the private PostgreSQL (initdb refuses root)", "user", sandboxUser)
			u, err = user.Lookup(sandboxUser)
		} else {
			log.Warn("sandbox: could not create a system user; running PostgreSQL as nobody", "user", sandboxUser,
				"err", strings.TrimSpace(string(out)))
			u, err = user.Lookup("nobody")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("find an unprivileged user to run PostgreSQL as (initdb refuses root): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s has a non-numeric uid or gid", u.Username)
	}
	owner := &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if !owner.canEnter(p) {
			return nil, fmt.Errorf("the private PostgreSQL runs as user %s (initdb refuses root), who cannot enter %s: "+
				"allow it with `chmod o+x %s`, or start the sandbox with --var in a directory other users can enter", owner.name, p, p)
		}
		if p == filepath.Dir(p) {
			return owner, nil
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

// serverEnv is the environment of initdb and postgres: the sandbox's own,
// without PG* variables meant for clients or another cluster.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port for PostgreSQL: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a log file, for an error message.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
