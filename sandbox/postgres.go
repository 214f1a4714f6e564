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
	// The account stays put until the server has started: other sandboxes
	// creating it wait (see ownerLockPath).
	owner, release, err := clusterOwner(sandboxUser, dir, data, log)
	if err != nil {
		return nil, err
	}
	defer release()
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

// ShellURL is URL as a word for a POSIX shell, for a person to paste: the
// shell reads the password from its file, so the password itself is never
// printed. It works while the cluster runs (its port changes with each
// start) and for whoever may read the file.
func (c *Cluster) ShellURL() string {
	u, err := url.Parse(c.url)
	if err != nil {
		return ""
	}
	const placeholder = "PASSWORD"
	u.User = url.UserPassword(clusterRole, placeholder)
	before, after, _ := strings.Cut(u.String(), ":"+placeholder+"@")
	return `"` + before + `:$(cat ` + ShellQuote(filepath.Join(c.dir, "password")) + `)@` + after + `"`
}

// ShellQuote quotes s as one word for a POSIX shell; a word of only safe
// characters stays as it is.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

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
	logPath := filepath.Join(c.dir, "initdb.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	owner, err = c.ownDir(owner)
	if err != nil {
		return err
	}
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
	owner, err = c.ownDir(owner)
	if err != nil {
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

// ownDir looks the cluster's account up again right before a program is
// run as it and gives the cluster's directory to the uid it finds, so the
// credential, the files' owner and the user database agree at the exec.
func (c *Cluster) ownDir(owner *osUser) (*osUser, error) {
	now, err := owner.refresh()
	if err != nil {
		return nil, err
	}
	if now == nil {
		return nil, nil
	}
	if st, err := os.Stat(filepath.Join(c.dir, "data")); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != now.uid {
			c.log.Warn("sandbox: the private PostgreSQL's files belonged to another uid; giving them to its user",
				"user", now.name, "uid", now.uid, "was", sys.Uid)
		}
	}
	return now, now.chown(c.dir)
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

// createDatabase creates the wgbot database of the private cluster and
// marks it as the sandbox's: the whole cluster is the sandbox's own (it
// made it, and only its password opens it), so an older sandbox's database
// there, made before databases were marked, is marked too.
func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to the private cluster: %w", err)
	}
	defer conn.Close(ctx)
	if err := createMarked(ctx, conn, name); err != nil {
		return err
	}
	return mark(ctx, conn, name)
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
