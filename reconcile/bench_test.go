package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgconf"
	"wgbot/wireguard/wgtest"
)

// BenchmarkIssuanceAtScale issues trials through service.IssueTrial on a
// server already holding N peers (seeded with real sealed keys by COPY), with
// the reconciler running in device mode on wireguard-go and in file mode, and
// reports per issuance the latency (p50, p99) and this process's CPU time,
// a burst of 200 concurrent trials, and the cold start (a full reconcile
// filling an empty device) next to a raw wgctrl batch add of the same peers
// on another empty device, measured in the same run. Run it with
//
//	go test -run '^$' -bench IssuanceAtScale -benchtime 1x ./reconcile
func BenchmarkIssuanceAtScale(b *testing.B) {
	for _, mode := range []string{reconcile.ModeDevice, reconcile.ModeFile} {
		for _, n := range []int{0, 10000, 50000} {
			b.Run(fmt.Sprintf("mode=%s/peers=%d", mode, n), func(b *testing.B) { benchIssuance(b, mode, n) })
		}
	}
}

func benchIssuance(b *testing.B, mode string, n int) {
	wgtest.RequireTools(b)
	ctx := context.Background()
	wg, err := device.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer wg.Close()
	ns := wgtest.Netns(b, "bsrv")
	iface, raw := wgtest.UniqueName(b, "wgb"), wgtest.UniqueName(b, "wgr")
	wgtest.StartWireGuardGo(b, ns, iface)
	wgtest.StartWireGuardGo(b, ns, raw)

	url := pgtest.URL(b)
	pool, err := pgxpool.New(ctx, url+"&pool_max_conns=10")
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewStore(pool, postgres.Options{LockID: 720301}, nil)
	priv, _ := wgtypes.GeneratePrivateKey()
	srv, err := store.EnsureServer(ctx, wgbot.Server{Name: "main", Interface: iface, Endpoint: "198.18.0.1:51820",
		Subnet: netip.MustParsePrefix("10.64.0.0/16"), Address: netip.MustParseAddr("10.64.0.1"), PublicKey: priv.PublicKey().String(), MTU: 1420})
	if err != nil {
		b.Fatal(err)
	}
	keys, _ := secret.NewKeyring(bytes.Repeat([]byte{3}, 32))
	devPeers := pgtest.SeedPeers(b, pool, keys, srv.ID, netip.MustParseAddr("10.64.0.2"), n)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var client *device.Control
	if mode == reconcile.ModeDevice {
		client = wg
	}
	rec, err := reconcile.New(store, keys, nilIfNone(client), reconcile.Config{ServerID: srv.ID, Interface: iface, Mode: mode,
		File: wgconf.Config{Path: filepath.Join(b.TempDir(), "wg0.conf")}, ResyncInterval: time.Hour},
		func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }, log)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := rec.Reconcile(ctx); err != nil {
		b.Fatal(err)
	}
	cold := time.Since(start)
	if mode == reconcile.ModeDevice {
		start = time.Now()
		if err := wg.ConfigureDevice(raw, wgtypes.Config{Peers: devPeers}); err != nil {
			b.Fatal(err)
		}
		rawAdd := time.Since(start)
		b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
		b.ReportMetric(float64(rawAdd.Milliseconds()), "rawadd-ms")
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	svc := service.New(store, keys, rec, service.Config{Server: srv, Plans: service.DefaultPlans(), TrialDays: 3,
		ClientRoutes: []netip.Prefix{srv.Subnet}, Keepalive: 25, ApplyWait: 10 * time.Second}, nil, log)
	users := make([]wgbot.User, 215)
	for i := range users {
		if users[i], err = svc.Register(ctx, wgbot.User{TelegramID: int64(1_000_000 + i)}, ""); err != nil {
			b.Fatal(err)
		}
	}
	for n, _ := rec.Counts(); n < 2; n, _ = rec.Counts() { // Run's first pass, catching up from the one above
		time.Sleep(20 * time.Millisecond)
	}
	var lat []time.Duration
	cpu0 := cpuTime()
	rows0 := rec.RowsRead()
	for _, u := range users[:15] {
		t0 := time.Now()
		if _, err := svc.IssueTrial(ctx, u); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	cpu := (cpuTime() - cpu0) / 15
	rows := float64(rec.RowsRead()-rows0) / 15
	slices.Sort(lat)
	b.ReportMetric(float64(lat[7].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[14].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000, "cpu-ms/issue")
	b.ReportMetric(rows, "rows/issue")

	start = time.Now()
	var wgp sync.WaitGroup
	errs := make(chan error, 200)
	for _, u := range users[15:] {
		wgp.Add(1)
		go func() {
			defer wgp.Done()
			if _, err := svc.IssueTrial(ctx, u); err != nil {
				errs <- err
			}
		}()
	}
	wgp.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "burst200-ms")
	b.ReportMetric(float64(rssBytes())/(1<<20), "rss-MB")
}

func nilIfNone(c *device.Control) device.Client {
	if c == nil {
		return nil
	}
	return c
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss int64
	fmt.Sscan(string(raw), &size, &rss)
	return rss * int64(os.Getpagesize())
}
