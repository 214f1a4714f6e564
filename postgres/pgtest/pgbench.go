package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// Pgbench runs script (pgbench's script language) at clients connections
// for 5 seconds against the database at url and returns the transactions
// per second, without the connection time: the ceiling a benchmark
// compares wgbot against, measured in the same run.
func Pgbench(tb testing.TB, url, script string, clients int) float64 {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "pgbench.sql")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command("pgbench", "-n", "-f", path, "-c", strconv.Itoa(clients), "-j", "2", "-T", "5", url).CombinedOutput()
	if err != nil {
		tb.Fatalf("pgbench: %v\n%s", err, out)
	}
	m := pgbenchTPS.FindSubmatch(out)
	if m == nil {
		tb.Fatalf("no tps in pgbench output:\n%s", out)
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		tb.Fatalf("pgbench tps %q: %v", m[1], err)
	}
	return tps
}

var pgbenchTPS = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
