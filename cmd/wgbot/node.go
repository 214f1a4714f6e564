package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/config"
	"wgbot/gctight"
	"wgbot/httpserver"
	"wgbot/metrics"
	"wgbot/postgres"
	"wgbot/reconcile"
	"wgbot/traffic"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgconf"
)

// summaryEvery is how many heartbeats share one read of the device for
// its summary: at 50,000 peers a read costs wireguard-go about 0.4 s.
const summaryEvery = 6

// node runs `wgbot node`, the agent on one WireGuard host: it keeps the
// host's device and wg0.conf equal to the database for one server row
// (incremental deltas on NOTIFY, a full resync on WG_RESYNC_INTERVAL and
// after reconnecting), tells the serve processes each revision it
// applied, and reports a heartbeat with a device summary. While the
// database is unreachable the device keeps what was last applied; the
// node retries and converges when it returns. It holds no master key:
// serve seals its peers' preshared keys to the node's own key pair
// (NODE_KEY_FILE, made on first start), which it rotates when the
// operator asks (`wgbot servers rekey`).
func node(ctx context.Context, s config.Settings, args []string, log *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	name := fs.String("server", s.ServerName(), "the server row this host runs (NODE_SERVER)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.WGApplyMode != reconcile.ModeDevice && s.WGApplyMode != reconcile.ModeFile {
		return usageError{fmt.Sprintf("wgbot node applies the server itself: WG_APPLY_MODE must be %s or %s, not %s",
			reconcile.ModeDevice, reconcile.ModeFile, s.WGApplyMode)}
	}
	if len(s.MasterKey) > 0 || len(s.MasterKeysOld) > 0 {
		return usageError{"wgbot node does not use the master key and must not hold it: remove MASTER_KEY and MASTER_KEY_OLD from its settings " +
			"(and any copy of the master key file from this host); it opens its peers' preshared keys with its own key, NODE_KEY_FILE"}
	}
	if err := s.RequireDatabase(); err != nil {
		return err
	}
	nodeKeys, err := loadNodeKey(s, log)
	if err != nil {
		return err
	}
	pool, err := postgres.OpenWaiting(ctx, poolConfig(s), log)
	if err != nil {
		return err
	}
	a := &app{settings: s, log: log, pool: pool, metrics: metrics.New(pool),
		store: postgres.NewStore(pool, postgres.Options{LockID: s.DBIPAllocLockID}, nil)}
	defer a.Close()
	if a.server, err = a.store.ServerByName(ctx, *name); err != nil {
		return err
	}
	if err := a.checkNodeKey(ctx, nodeKeys); err != nil {
		return err
	}
	var client device.Client
	if s.WGApplyMode == reconcile.ModeDevice {
		if a.wg, err = device.Open(); err != nil {
			return fmt.Errorf("open WireGuard control: %w", err)
		}
		client = a.wg
	}
	pub, err := a.serverPublicKey()
	if err != nil {
		return err
	}
	if err := a.store.RegisterNodeKey(ctx, a.server.ID, pub); err != nil {
		return err
	}

	applied := appliedRevision{wake: make(chan struct{}, 1)}
	rec, err := reconcile.New(a.store, nodeKeys, client, reconcile.Config{
		ServerID: a.server.ID, Interface: s.WGInterface, Mode: s.WGApplyMode,
		File:           wgconf.Config{Path: s.WGConfigPath, LockPath: s.WGConfigLockPath, LockTimeout: s.WGLockTimeout},
		ResyncInterval: s.WGResyncInterval, Metrics: a.metrics,
		OnApplied: applied.set,
	}, listenFunc(s), log)
	if err != nil {
		return err
	}
	a.rec = rec
	var up func() error
	if a.wg != nil {
		up = func() error { return deviceUp(s.WGInterface) }
	}
	ln, err := net.Listen("tcp", s.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on METRICS_ADDR %s: %w", s.MetricsAddr, err)
	}
	web := httpserver.NewServer(httpserver.Private(httpserver.Deps{Pool: pool, Reconciler: rec, Log: log, Device: up,
		Metrics: a.metrics, StaleAfter: 3 * s.WGResyncInterval}), httpLimits(s))

	// boot names this node process in its reports: the first report of a
	// new one ends the server's outage since the last report of the old.
	boot := rand.Text()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rec.Run(gctx) })
	g.Go(func() error { return a.publishApplied(gctx, boot, &applied) })
	g.Go(func() error { return a.heartbeat(gctx, boot) })
	g.Go(func() error { return a.watchNodeKey(gctx, nodeKeys) })
	if col := a.trafficCollector(); col != nil {
		g.Go(func() error { return col.Run(gctx) })
	}
	serveHTTP(g, gctx, web, ln, 10*time.Second)
	log.Info("wgbot node running", "version", version, "server", a.server.Name, "apply", s.WGApplyMode, "metrics", ln.Addr().String())
	fmt.Fprintf(stdout, "wgbot node for server %s (metrics on http://%s)\n", a.server.Name, ln.Addr())
	err = g.Wait()
	log.Info("wgbot node stopped")
	return err
}

// listenFunc opens the dedicated LISTEN connection a reconciler uses.
func listenFunc(s config.Settings) func(context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(s.DatabaseURL)
		if err != nil {
			return nil, err
		}
		cfg.ConnectTimeout = s.DBConnectTimeout
		cfg.RuntimeParams["application_name"] = "wgbot-listen"
		return pgx.ConnectConfig(ctx, cfg)
	}
}

// appliedRevision is the newest revision the node applied, and a wake-up
// for publishApplied; set never blocks the reconciler.
type appliedRevision struct {
	rev  atomic.Int64
	wake chan struct{}
}

func (r *appliedRevision) set(rev int64) {
	r.rev.Store(rev)
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// publishApplied records the newest applied revision for the serve
// processes waiting on it; while the database is away it retries, with
// whatever is newest by then.
func (a *app) publishApplied(ctx context.Context, boot string, applied *appliedRevision) error {
	var published int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-applied.wake:
		case <-time.After(time.Second): // a retry
		}
		rev := applied.rev.Load()
		if rev <= published {
			continue
		}
		if err := a.store.NodeApplied(ctx, a.server.ID, boot, rev); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("publish the applied revision; retrying", "revision", rev, "err", err)
			}
			continue
		}
		published = rev
	}
}

// heartbeat reports the node's state every NODE_HEARTBEAT: the applied
// revision, its version, and the device's peers, recent handshakes and
// listen port (read every summaryEvery beats), as the node process boot.
func (a *app) heartbeat(ctx context.Context, boot string) error {
	tick := time.NewTicker(a.settings.NodeHeartbeat)
	defer tick.Stop()
	r := postgres.NodeReport{Boot: boot}
	for beat := 0; ; beat++ {
		if beat%summaryEvery == 0 && a.wg != nil && !a.summarize(&r) {
			beat-- // read at the next beat instead
		}
		_, r.Revision, _ = a.rec.Status()
		r.Version = version
		if err := a.store.ReportNode(ctx, a.server.ID, r); err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat not recorded; the device keeps its peers", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// summarize puts the device's peers, recent handshakes and listen port
// into r. While a full reconcile or a traffic collection holds the whole
// device it reads nothing and reports false: the beat keeps the last
// summary rather than be late.
func (a *app) summarize(r *postgres.NodeReport) bool {
	restore, ok := gctight.TryBegin()
	if !ok {
		return false
	}
	defer restore()
	var peers, handshakes int
	recent := time.Now().Add(-3 * time.Minute)
	d, err := device.Peers(a.wg, a.settings.WGInterface, func(p *wgtypes.Peer) {
		peers++
		if p.LastHandshakeTime.After(recent) {
			handshakes++
		}
	})
	if err != nil {
		a.log.Warn("read the device for the heartbeat", "err", err)
		return true
	}
	r.Peers, r.Handshakes, r.ListenPort = peers, handshakes, d.ListenPort
	return true
}

// deviceUp checks that the WireGuard interface exists, without reading it
// (at 50,000 peers a read costs wireguard-go about 0.4 s): a kernel
// interface in this network namespace, or a userspace device's control
// socket, which is how wgbot reaches it from any namespace.
func deviceUp(iface string) error {
	if _, err := net.InterfaceByName(iface); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join("/var/run/wireguard", iface+".sock")); err == nil {
		return nil
	}
	return fmt.Errorf("WireGuard interface %s: not found (no such network interface, no /var/run/wireguard/%s.sock)", iface, iface)
}

// trafficCollector collects the device's per-peer traffic into the month
// totals, on the host that owns the device; nil when this process does not
// read one (file mode) or USAGE_INTERVAL is 0.
func (a *app) trafficCollector() *traffic.Collector {
	if a.wg == nil || a.settings.UsageInterval <= 0 {
		return nil
	}
	return traffic.New(a.wg, a.store, traffic.Config{ServerID: a.server.ID, Interface: a.settings.WGInterface,
		Interval: a.settings.UsageInterval}, a.log)
}
