package wgtest_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"wgbot/wireguard/wgtest"
)

// TestHelpersCleanUp proves that namespaces, veth links and wireguard-go
// processes work while the test runs and leave nothing behind after it.
func TestHelpersCleanUp(t *testing.T) {
	wgtest.RequireTools(t)
	var nsA, nsB, iface string
	t.Run("setup", func(t *testing.T) {
		nsA, nsB = wgtest.Netns(t, "a"), wgtest.Netns(t, "b")
		wgtest.Veth(t, nsA, netip.MustParsePrefix("198.18.0.1/30"), nsB, netip.MustParsePrefix("198.18.0.2/30"))
		wgtest.Exec(t, nsA, "ping", "-c", "1", "-W", "2", "198.18.0.2")

		iface = wgtest.UniqueName(t, "wgt")
		wgtest.StartWireGuardGo(t, nsA, iface)
		if out := wgtest.Exec(t, nsA, "ip", "link", "show", iface); !strings.Contains(out, iface) {
			t.Fatalf("interface %s not in namespace %s:\n%s", iface, nsA, out)
		}
		// The device is in nsA only; the host namespace must not see it.
		if _, err := os.Stat(filepath.Join("/sys/class/net", iface)); err == nil {
			t.Fatalf("interface %s leaked into the host namespace", iface)
		}
	})

	names, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, n := range names {
		if n.Name() == nsA || n.Name() == nsB {
			t.Errorf("namespace %s still exists after its test ended", n.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(wgtest.SocketDir, iface+".sock")); !os.IsNotExist(err) {
		t.Errorf("UAPI socket of %s still exists after its test ended (stat: %v)", iface, err)
	}
	if _, err := wgtest.ExecErr(nsA, "true"); err == nil {
		t.Errorf("namespace %s can still be entered after its test ended", nsA)
	}
}

func TestUniqueName(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := wgtest.UniqueName(t, "wgs")
		if len(n) > 15 || !strings.HasPrefix(n, "wgs") {
			t.Fatalf("UniqueName = %q: want prefix wgs and at most 15 characters", n)
		}
		if seen[n] {
			t.Fatalf("UniqueName returned %q twice", n)
		}
		seen[n] = true
	}
}

func TestParseQuick(t *testing.T) {
	tests := []struct {
		name      string
		conf      string
		wantWG    string
		wantAddrs []string
		wantMTU   string
		wantRoute []string
	}{
		{
			name: "issued client config",
			conf: `[Interface]
PrivateKey = cHJpdmF0ZQ==
Address = 10.66.0.2/32, fd00::2
DNS = 1.1.1.1
MTU = 1380

[Peer]
PublicKey = cHVibGlj
PresharedKey = cHNr
Endpoint = 198.18.0.1:51820
AllowedIPs = 0.0.0.0/0, ::/0
PersistentKeepalive = 25
`,
			wantWG: `[Interface]
PrivateKey = cHJpdmF0ZQ==

[Peer]
PublicKey = cHVibGlj
PresharedKey = cHNr
Endpoint = 198.18.0.1:51820
AllowedIPs = 0.0.0.0/0, ::/0
PersistentKeepalive = 25
`,
			wantAddrs: []string{"10.66.0.2/32", "fd00::2/128"},
			wantMTU:   "1380",
			wantRoute: []string{"0.0.0.0/0", "::/0"},
		},
		{
			name:      "hooks and odd case are stripped, comments kept",
			conf:      "[interface]\n# my laptop\naddress=10.0.0.2/24\nPostUp = iptables -A FORWARD\nsaveconfig = true\nListenPort = 51820\n",
			wantWG:    "[interface]\n# my laptop\nListenPort = 51820\n",
			wantAddrs: []string{"10.0.0.2/24"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := wgtest.ParseQuick(tt.conf)
			if err != nil {
				t.Fatal(err)
			}
			if q.WG != tt.wantWG {
				t.Errorf("WG =\n%s\nwant\n%s", q.WG, tt.wantWG)
			}
			if got := strs(q.Addresses); !slices.Equal(got, tt.wantAddrs) {
				t.Errorf("Addresses = %v, want %v", got, tt.wantAddrs)
			}
			if q.MTU != tt.wantMTU {
				t.Errorf("MTU = %q, want %q", q.MTU, tt.wantMTU)
			}
			if got := strs(q.Routes); !slices.Equal(got, tt.wantRoute) {
				t.Errorf("Routes = %v, want %v", got, tt.wantRoute)
			}
		})
	}

	if _, err := wgtest.ParseQuick("[Interface]\nAddress = not-an-ip\n"); err == nil {
		t.Error("ParseQuick accepted Address = not-an-ip")
	}
}

func strs(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// fatalRecorder stands in for a test so that RequireTools' failure can be
// observed instead of failing this test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestRequireToolsFails proves that a machine without the tools fails the
// test, naming what is missing and the script that installs it, rather than
// skipping.
func TestRequireToolsFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		wgtest.RequireTools(rec)
	}()
	<-done
	for _, want := range []string{"ip", "wg", "ping", "scripts/install-deps.sh"} {
		if !strings.Contains(rec.msg, want) {
			t.Errorf("RequireTools failure %q does not mention %q", rec.msg, want)
		}
	}
}

// TestNetnsSweepsStale proves that a namespace left behind by a test process
// that was killed is deleted by the next Netns call, while one whose creator
// lives is kept.
func TestNetnsSweepsStale(t *testing.T) {
	wgtest.RequireTools(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("wgtest-stale-%d-00000000", dead.Process.Pid)
	live := fmt.Sprintf("wgtest-live-%d-00000000", os.Getpid())
	for _, ns := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	}

	wgtest.Netns(t, "sweep")

	if _, err := os.Stat(filepath.Join("/run/netns", stale)); !os.IsNotExist(err) {
		t.Errorf("stale namespace %s of dead process %d survived (stat: %v)", stale, dead.Process.Pid, err)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", live)); err != nil {
		t.Errorf("namespace %s of a live process was deleted: %v", live, err)
	}
}
