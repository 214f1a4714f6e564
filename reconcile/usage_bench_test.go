package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/postgres"
	"wgbot/postgres/pgtest"
	"wgbot/secret"
	"wgbot/traffic"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgtest"
)

// queryCounter counts the statements a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// BenchmarkCollection measures one traffic collection on a wireguard-go
// device holding N peers that the database knows: the first after a start
// (every peer written), a steady one where nothing moved (no peer
// written), and the write of a collection in which every peer moved (the
// worst case, fed to the store directly: the test cannot make 50,000
// peers send traffic), into new month rows and then into existing ones.
// It reports the time and the statements each sends. Run it with
//
//	go test -run '^$' -bench Collection -benchtime 1x ./reconcile
func BenchmarkCollection(b *testing.B) {
	for _, n := range []int{10000, 50000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) { benchCollection(b, n) })
	}
}

func benchCollection(b *testing.B, n int) {
	wgtest.RequireTools(b)
	ctx := context.Background()
	wg, err := device.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer wg.Close()
	ns := wgtest.Netns(b, "bcol")
	iface := wgtest.UniqueName(b, "wgc")
	wgtest.StartWireGuardGo(b, ns, iface)

	cfg, err := pgxpool.ParseConfig(pgtest.URL(b) + "&pool_max_conns=4")
	if err != nil {
		b.Fatal(err)
	}
	queries := &queryCounter{}
	cfg.ConnConfig.Tracer = queries
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
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
	peers := pgtest.SeedPeers(b, pool, keys, srv.ID, netip.MustParseAddr("10.64.0.2"), n)
	if err := wg.ConfigureDevice(iface, wgtypes.Config{Peers: peers}); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	if _, err := wg.Device(iface); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds()), "read-ms")

	col := traffic.New(wg, store, traffic.Config{ServerID: srv.ID, Interface: iface}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	measure := func(unit string, collect func() int) {
		q0, cpu0, t0 := queries.n.Load(), cpuTime(), time.Now()
		written := collect()
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), unit+"-ms")
		b.ReportMetric(float64(queries.n.Load()-q0), unit+"-queries")
		b.ReportMetric(float64((cpuTime() - cpu0).Milliseconds()), unit+"-cpu-ms")
		b.ReportMetric(float64(written), unit+"-written")
	}
	collect := func() int {
		w, err := col.Collect(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return w
	}
	measure("first", collect)
	measure("steady", collect)

	// Every peer moved: what the write costs when all of them are busy.
	at := time.Now()
	moved := func(round int64) func() int {
		return func() int {
			samples := make([]postgres.PeerSample, len(peers))
			for i, p := range peers {
				samples[i] = postgres.PeerSample{PublicKey: p.PublicKey.String(), Received: round << 20, Transmitted: round << 22, LastHandshake: at}
			}
			at = at.Add(time.Minute)
			if err := store.RecordUsage(ctx, srv.ID, at, samples); err != nil {
				b.Fatal(err)
			}
			return len(samples)
		}
	}
	measure("allnew", moved(1))   // the month's rows are inserted
	measure("allmoved", moved(2)) // and then updated
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM peer_usage`).Scan(&rows); err != nil || rows != n {
		b.Fatalf("%d month rows (%v), want one per peer: %d", rows, err, n)
	}
}
