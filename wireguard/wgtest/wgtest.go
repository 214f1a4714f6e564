package wgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// commandTimeout bounds every command so that a wedged `ip` or `ping` fails
// the test instead of hanging the whole package until go test's deadline.
const commandTimeout = 30 * time.Second

// maxIfaceName is IFNAMSIZ (16) minus the terminating NUL.
const maxIfaceName = 15

// RequireTools fails the test unless the machine can run WireGuard tests:
// root, the ip, wg and ping commands and /dev/net/tun. It fails rather than
// skips so that a CI machine without them cannot pass by running nothing.
func RequireTools(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"ip", "wg", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun")
	}
	if len(missing) > 0 {
		t.Fatalf("WireGuard tests need %s: run scripts/install-deps.sh (as root)", strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		t.Fatalf("WireGuard tests create network namespaces and must run as root (euid is %d)", os.Geteuid())
	}
}

// UniqueName returns prefix followed by random hex, at most 15 characters so
// that it is a valid interface name. Interface names must be unique across
// the machine, not only the namespace, because wireguard-go's UAPI sockets
// all live in /var/run/wireguard.
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	n := (maxIfaceName - len(prefix)) / 2
	if n < 3 {
		t.Fatalf("name prefix %q is too long: leave at least 6 of %d characters for uniqueness", prefix, maxIfaceName)
	}
	return prefix + randomHex(min(n, 4))
}

// randomHex returns n random bytes in hex; 4 bytes make a collision between
// concurrent test runs on one machine vanishingly unlikely.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Netns creates a new network namespace with a unique name built from name,
// brings its loopback up and deletes it when the test ends, passed or failed.
// It returns the namespace's name.
func Netns(t testing.TB, name string) string {
	t.Helper()
	sweepStaleNetns(t)
	ns := fmt.Sprintf("%s%s-%d-%s", netnsPrefix, name, os.Getpid(), randomHex(4))
	if out, err := run("ip", "netns", "add", ns); err != nil {
		t.Fatalf("create network namespace %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := run("ip", "netns", "delete", ns); err != nil {
			t.Errorf("delete network namespace %s: %v\n%s", ns, err, out)
		}
	})
	Exec(t, ns, "ip", "link", "set", "lo", "up")
	return ns
}

// netnsPrefix marks namespaces made by Netns; their names end in the
// creating process's id and a random suffix.
const netnsPrefix = "wgtest-"

// sweepStaleNetns deletes namespaces left by test processes that died
// without running their cleanups (a go test timeout, a kill -9), so that
// they do not pile up on a shared machine. A namespace whose creator is
// alive is never touched.
func sweepStaleNetns(t testing.TB) {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return // none yet
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, netnsPrefix) {
			continue
		}
		parts := strings.Split(name, "-")
		if len(parts) < 4 {
			continue
		}
		pid, err := strconv.Atoi(parts[len(parts)-2])
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if out, err := run("ip", "netns", "delete", name); err != nil {
			t.Logf("delete stale namespace %s of dead process %d: %v\n%s", name, pid, err, out)
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Veth links namespaces nsA and nsB with a veth pair, gives each end its
// address and brings both up. It returns the two interface names. Use
// addresses from 198.18.0.0/15 (reserved for benchmarking) so that nothing
// in a test can be mistaken for a real network. The links vanish with their
// namespaces.
func Veth(t testing.TB, nsA string, addrA netip.Prefix, nsB string, addrB netip.Prefix) (ifA, ifB string) {
	t.Helper()
	ifA, ifB = UniqueName(t, "veth"), UniqueName(t, "veth")
	// Creating both ends directly in their namespaces keeps the root
	// namespace untouched, even for a moment.
	if out, err := run("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		t.Fatalf("create veth %s@%s <-> %s@%s: %v\n%s", ifA, nsA, ifB, nsB, err, out)
	}
	Exec(t, nsA, "ip", "addr", "add", addrA.String(), "dev", ifA)
	Exec(t, nsB, "ip", "addr", "add", addrB.String(), "dev", ifB)
	Exec(t, nsA, "ip", "link", "set", ifA, "up")
	Exec(t, nsB, "ip", "link", "set", ifB, "up")
	return ifA, ifB
}

// Exec runs a command such as ip, wg or ping inside namespace ns and returns
// its combined output. It fails the test, quoting the output, if the command
// fails.
func Exec(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := ExecErr(ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ExecErr is Exec for commands that are expected to fail, such as a ping that
// must not get through. The error quotes the command and its output.
func ExecErr(ns string, args ...string) (string, error) {
	if ns == "" {
		return "", errors.New("wgtest: no network namespace given; tests must not touch the host's network")
	}
	out, err := run(append([]string{"ip", "netns", "exec", ns}, args...)...)
	if err != nil {
		return out, fmt.Errorf("in namespace %s: %s: %w\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out, nil
}

func run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}
