package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/postgres/pgtest"
	"wgbot/secret"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgtest"
)

// BenchmarkE2E measures what a user feels, through the real binary: a
// `wgbot serve` process against the Bot API emulator, on a server already
// holding N peers (seeded by COPY with real sealed keys while wgbot is
// stopped), in device mode on a wireguard-go device and in file mode. It
// reports:
//   - press→document p50 and p99 over 15 users in turn: from the Trial
//     press entering the emulator to the config document arriving in the
//     chat;
//   - wgbot's CPU time (user+system of the serve process) per issuance;
//   - a burst of 200 Trial presses at once, until the last document;
//   - wgbot's resident memory after all of it;
//   - the cold start: the first full reconcile filling the empty device
//     (its own "reconciled" log line), next to a raw wgctrl batch add of
//     the same peers on a second empty device in the same run.
//
// Run it with `make bench-e2e`; it needs root (network namespaces).
func BenchmarkE2E(b *testing.B) {
	for _, mode := range []string{"device", "file"} {
		for _, n := range []int{0, 10000, 50000} {
			b.Run(fmt.Sprintf("mode=%s/peers=%d", mode, n), func(b *testing.B) { benchE2E(b, mode, n) })
		}
	}
}

const (
	benchBotToken  = "7000000003:AAH-bench-bot-token-0123456789abcdef"
	benchMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	benchUsers     = 15  // in turn
	benchBurst     = 200 // at once
)

func benchE2E(b *testing.B, mode string, n int) {
	wgtest.RequireTools(b)
	ctx := context.Background()
	tg := tgtest.New(benchBotToken)
	defer tg.Close()
	dbURL := pgtest.URL(b)
	env, serverKey := hostEnv(b, dbURL, benchBotToken, tg.URL(), mode)
	env["WG_RESYNC_INTERVAL"] = "1h" // no periodic resync inside the measurement
	var wg *wgctrl.Client
	var raw string
	if mode == "device" {
		var ns string
		wg, ns = deviceHost(b, env, serverKey)
		raw = wgtest.UniqueName(b, "wgr")
		wgtest.StartWireGuardGo(b, ns, raw)
	}

	// The binary an operator runs: the test binary would add its own code
	// and data to the memory measured.
	bin := buildWgbot(b)
	// A first start creates the schema and the server row; the peers are
	// seeded while wgbot is stopped, so the second start fills the device.
	stop, _, _ := startProcess(b, runBinary(bin, env, "serve"))
	warm := tgtest.User{ID: 2, FirstName: "Warm", LanguageCode: "en"}
	trialMenus(b, tg, []tgtest.User{warm})
	stop()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var serverID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM servers`).Scan(&serverID); err != nil {
		b.Fatal(err)
	}
	master, _ := base64.StdEncoding.DecodeString(benchMasterKey)
	keys, err := secret.NewKeyring(master)
	if err != nil {
		b.Fatal(err)
	}
	seeded := pgtest.SeedPeers(b, pool, keys, serverID, netip.MustParseAddr("10.64.0.2"), n)

	started := time.Now()
	stop, logs, proc := startProcess(b, runBinary(bin, env, "serve"))
	defer stop()
	if n > 0 { // before any user arrives, as the raw add runs alone
		took, at := firstReconcile(b, logs, n)
		b.ReportMetric(took.Seconds(), "cold-s")
		b.ReportMetric(at.Sub(started).Seconds(), "start-to-filled-s")
		time.Sleep(2 * time.Second) // the first traffic collection, after the cold start
		b.ReportMetric(float64(procStatus(b, proc.Pid, "VmHWM"))/1024, "start-peak-rss-MB")
		if mode == "device" {
			t0 := time.Now()
			if err := wg.ConfigureDevice(raw, wgtypes.Config{Peers: seeded}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(t0).Seconds(), "rawadd-s")
		}
	}
	users := make([]tgtest.User, benchUsers+benchBurst)
	for i := range users {
		users[i] = tgtest.User{ID: int64(100_000 + i), FirstName: "U", LanguageCode: "en"}
	}
	menus := trialMenus(b, tg, users)

	var lat []time.Duration
	cpu0 := procCPU(b, proc.Pid)
	for i, u := range users[:benchUsers] {
		t0 := time.Now()
		if _, err := tg.PressButton(u, menus[i].ID, "trial"); err != nil {
			b.Fatal(err)
		}
		waitDocuments(b, tg, users[i:i+1], 30*time.Second)
		lat = append(lat, time.Since(t0))
		time.Sleep(250 * time.Millisecond) // users in turn, not back to back
	}
	cpu := (procCPU(b, proc.Pid) - cpu0) / benchUsers
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "p99-ms")
	b.ReportMetric(ms(cpu), "cpu-ms/issue")

	t0 := time.Now()
	for i, u := range users[benchUsers:] {
		if _, err := tg.PressButton(u, menus[benchUsers+i].ID, "trial"); err != nil {
			b.Fatal(err)
		}
	}
	waitDocuments(b, tg, users[benchUsers:], 2*time.Minute)
	b.ReportMetric(ms(time.Since(t0)), "burst200-ms")
	b.ReportMetric(float64(procStatus(b, proc.Pid, "VmRSS"))/1024, "rss-MB")
	b.ReportMetric(float64(procStatus(b, proc.Pid, "VmHWM"))/1024, "peak-rss-MB")
	// The Go heap, from the runtime's own figures on /metrics.
	_, metrics := fetch("http://" + env["METRICS_ADDR"] + "/metrics")
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			b.ReportMetric(f/(1<<20), "heap-inuse-MB")
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// trialMenus sends /start for every user and waits for each one's menu
// with the Trial button.
func trialMenus(b testing.TB, tg *tgtest.Server, users []tgtest.User) []tgtest.Message {
	for _, u := range users {
		tg.SendText(u, "/start")
	}
	menus := make([]tgtest.Message, len(users))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := tg.Wait(ctx, func() bool {
		for i, u := range users {
			if menus[i].ID == 0 {
				menus[i] = trialMenu(tg.Messages(u.ID))
				if menus[i].ID == 0 {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		b.Fatalf("the users' menus did not arrive: %v", err)
	}
	return menus
}

func trialMenu(msgs []tgtest.Message) tgtest.Message {
	for _, m := range msgs {
		for _, row := range m.Keyboard {
			for _, btn := range row {
				if btn.CallbackData == "trial" {
					return m
				}
			}
		}
	}
	return tgtest.Message{}
}

// waitDocuments waits until every user has a document.
func waitDocuments(b testing.TB, tg *tgtest.Server, users []tgtest.User, within time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	next := 0
	err := tg.Wait(ctx, func() bool {
		for next < len(users) && docs(tg, users[next].ID) > 0 {
			next++
		}
		return next == len(users)
	})
	if err != nil {
		b.Fatalf("%d of %d configs arrived: %v", next, len(users), err)
	}
}

// firstReconcile waits for the serve process's first reconcile of at
// least n peers and returns what it logged it took, and when it logged it.
func firstReconcile(b *testing.B, logs *lockedBuffer, n int) (took time.Duration, at time.Time) {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var e struct {
				Msg   string `json:"msg"`
				Peers int    `json:"peers"`
				Took  string `json:"took"`
			}
			if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "reconciled" || e.Peers < n {
				continue
			}
			d, err := time.ParseDuration(e.Took)
			if err != nil {
				b.Fatalf("reconciled log line: %v", err)
			}
			return d, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("no reconcile of %d peers logged", n)
	return 0, time.Time{}
}

// procCPU is a process's user+system CPU time (/proc/PID/stat).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// procStatus is a kB field of /proc/PID/status, such as VmRSS.
func procStatus(b *testing.B, pid int, field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
