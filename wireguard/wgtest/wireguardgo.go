package wgtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SocketDir is where wireguard-go puts its UAPI sockets. It is one directory
// for every network namespace, which is why wgctrl in the test's own
// namespace can configure a device living in another one.
const SocketDir = "/var/run/wireguard"

// WireGuardGo returns the path of the wireguard-go binary: $WIREGUARD_GO if
// set, otherwise the module's tool dependency as built by `go tool -n`, which
// the go command builds once and then keeps in its build cache.
func WireGuardGo(t testing.TB) string {
	t.Helper()
	if path := os.Getenv("WIREGUARD_GO"); path != "" {
		return path
	}
	out, err := run("go", "tool", "-n", "wireguard")
	if err != nil {
		t.Fatalf("build wireguard-go (the module's tool dependency): %v\n%s", err, out)
	}
	return strings.TrimSpace(out)
}

// StartWireGuardGo runs wireguard-go in the foreground inside namespace ns,
// creating interface iface there (get a name from UniqueName), and waits
// until its UAPI socket accepts configuration. When the test ends it stops
// the process, reaps it and removes the socket. The interface starts down,
// without key, port or address.
func StartWireGuardGo(t testing.TB, ns, iface string) {
	t.Helper()
	RunWireGuardGo(t, ns, iface)
}

// RunWireGuardGo is StartWireGuardGo that also returns a stop function: it
// shuts wireguard-go down as the end of the test would (the interface and
// its peers vanish), so a test can restart the interface with a new
// StartWireGuardGo. Calling it twice is harmless.
func RunWireGuardGo(t testing.TB, ns, iface string) func() {
	t.Helper()
	if len(iface) > maxIfaceName {
		t.Fatalf("interface name %q is longer than %d characters", iface, maxIfaceName)
	}
	sock := filepath.Join(SocketDir, iface+".sock")
	if _, err := os.Stat(sock); err == nil {
		t.Fatalf("UAPI socket %s already exists: another wireguard-go owns %s; use UniqueName", sock, iface)
	}

	logPath := filepath.Join(t.TempDir(), "wireguard-go-"+iface+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create wireguard-go log: %v", err)
	}
	defer logFile.Close()

	// `ip netns exec` enters the namespace and execs the command, so the
	// process we start is wireguard-go itself and signals reach it.
	cmd := exec.Command("ip", "netns", "exec", ns, WireGuardGo(t), "-f", iface)
	cmd.Env = wireGuardGoEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// If the test binary dies without running cleanups (a go test timeout,
	// a kill), wireguard-go must not live on holding its namespace and
	// socket. SIGTERM lets it remove both itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start wireguard-go %s in %s: %v", iface, ns, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	var once sync.Once
	stopNow := func() {
		once.Do(func() {
			stop(t, cmd, exited, iface)
			if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove UAPI socket: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		stopNow()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("wireguard-go %s log:\n%s", iface, log)
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return stopNow
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("wireguard-go %s in %s exited before creating its UAPI socket: %v\n%s", iface, ns, waitErr, log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("wireguard-go %s in %s: no UAPI socket %s after 10s\n%s", iface, ns, sock, log)
		}
	}
}

// wireGuardGoEnv drops inherited WG_* variables (a stray WG_TUN_FD or
// WG_UAPI_FD would hand wireguard-go someone else's descriptors) and sets
// WG_PROCESS_FOREGROUND=1: any other value makes wireguard-go re-exec itself
// as a daemon, which we could neither wait for nor kill.
func wireGuardGoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WG_") && !strings.HasPrefix(kv, "LOG_LEVEL=") {
			env = append(env, kv)
		}
	}
	return append(env, "WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error")
}

// stop asks wireguard-go to shut down cleanly (it then removes its socket and
// TUN device), and kills it if it does not within a few seconds.
func stop(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}, iface string) {
	select {
	case <-exited:
		t.Errorf("wireguard-go %s exited before the test ended", iface)
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Errorf("wireguard-go %s (pid %d) did not die after SIGKILL", iface, cmd.Process.Pid)
	}
}
