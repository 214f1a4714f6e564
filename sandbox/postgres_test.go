package sandbox

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TempVar returns a fresh directory for a sandbox's files. As root the
// private cluster runs as an unprivileged user, who must be able to pass
// through the test's temporary directories (created 0700).
func tempVar(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p := dir; p != filepath.Dir(os.TempDir()) && p != "/"; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, st.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	return filepath.Join(dir, "var")
}

// clusterProcesses lists the pids of every process of the cluster named name.
func clusterProcesses(t *testing.T, name string) []string {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", name).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return nil // none
		}
		t.Fatalf("pgrep: %v", err)
	}
	return strings.Fields(string(out))
}

func TestClusterKeepsDataAndStopsCleanly(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(tempVar(t), "pg")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	c, err := StartCluster(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if !strings.Contains(c.URL(), "127.0.0.1") {
		t.Errorf("URL %q is not on loopback", c.URL())
	}
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('across restarts')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if n := len(clusterProcesses(t, c.Name())); n < 3 {
		t.Fatalf("want the postmaster and its workers found by cluster name, found %d processes", n)
	}
	if os.Geteuid() == 0 {
		st, _ := os.Stat(filepath.Join(dir, "data"))
		if st.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Error("as root the data directory must belong to an unprivileged user")
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if pids := clusterProcesses(t, c.Name()); len(pids) > 0 {
		t.Fatalf("processes of the stopped cluster remain: %v", pids)
	}

	// A second start finds the data of the first and the same password.
	c2, err := StartCluster(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	conn, err = pgx.Connect(ctx, c2.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "across restarts" {
		t.Fatalf("data did not survive a restart: %q, %v", v, err)
	}
}

// A sandbox killed outright leaves no server behind: the kernel's
// parent-death signal stops it; and if one survived anyway (an older
// sandbox), the next start stops it before starting its own.
func TestClusterLeftoverIsStopped(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(tempVar(t), "pg")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	c, err := StartCluster(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	// Forget the first handle without stopping it, as a killed sandbox
	// would: the next start must cope with the running server.
	first := c.PID()
	c2, err := StartCluster(ctx, dir, log)
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	defer c2.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(first, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(first, 0); err == nil {
		t.Errorf("the earlier server (pid %d) still runs", first)
	}
	if _, err := pgx.Connect(ctx, c2.URL()); err != nil {
		t.Fatal(err)
	}
}
