package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"golang.org/x/sync/errgroup"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/config"
	"wgbot/httpserver"
	"wgbot/jobs"
	"wgbot/metrics"
	"wgbot/panel"
	"wgbot/payment"
	"wgbot/payment/yookassa"
	"wgbot/postgres"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/telegram"
	"wgbot/wireguard/device"
	"wgbot/wireguard/wgconf"
)

// app is everything `serve` and the operator commands share.
type app struct {
	settings config.Settings
	log      *slog.Logger
	pool     *pgxpool.Pool
	store    *postgres.Store
	keys     *secret.Keyring
	server   wgbot.Server
	wg       *device.Control // nil unless WG_APPLY_MODE=device
	rec      *reconcile.Reconciler
	svc      *service.Service
	jobs     *river.Client[pgx.Tx]
	metrics  *metrics.Metrics
	bot      *telegram.Bot // nil: no Telegram front door (operator commands)
	// renewer charges saved cards (YOOKASSA_AUTORENEW=on); nil: off.
	renewer jobs.Renewer
	// extraRoutes are served by run next to the product's own routes:
	// the sandbox's page and its API. Empty for serve.
	extraRoutes map[string]http.Handler
	// metricsLn is the operator's private listener (METRICS_ADDR) for
	// /metrics and the detailed /readyz; nil serves every route on run's
	// one listener.
	metricsLn net.Listener
	// panelLn is the web panel's own listener (PANEL_ADDR apart from
	// HTTP_ADDR) and panel its handler; nil: no panel, or the panel is in
	// extraRoutes.
	panelLn net.Listener
	panel   http.Handler
}

func (a *app) Close() {
	if a.wg != nil {
		a.wg.Close()
	}
	if a.pool != nil {
		a.pool.Close()
	}
}

// openApp connects and wires the core: database, keys, the server row,
// the reconciler and the service. Nothing runs yet.
func openApp(ctx context.Context, s config.Settings, log *slog.Logger, waitForDB bool) (*app, error) {
	a := &app{settings: s, log: log}
	var err error
	if waitForDB {
		a.pool, err = postgres.OpenWaiting(ctx, poolConfig(s), log)
	} else {
		a.pool, err = openPool(ctx, s)
	}
	if err != nil {
		return nil, err
	}
	if err := a.wire(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) wire(ctx context.Context) error {
	s := a.settings
	a.metrics = metrics.New(a.pool)
	if s.MigrateOnStart {
		if _, err := postgres.Migrate(ctx, a.pool); err != nil {
			return err
		}
	}
	var err error
	if a.keys, err = masterKeyring(s, a.log); err != nil {
		return err
	}
	if s.WGApplyMode == reconcile.ModeDevice {
		if a.wg, err = device.Open(); err != nil {
			return fmt.Errorf("open WireGuard control: %w", err)
		}
	}
	outbox, err := jobs.NewOutbox(a.pool, a.log)
	if err != nil {
		return err
	}
	a.store = postgres.NewStore(a.pool, postgres.Options{LockID: s.DBIPAllocLockID, Quarantine: s.WGAddressQuarantine,
		RenewalGrace: s.RenewalGrace, ReminderDays: s.ReminderDays, NodeDownAfter: s.NodeDownAfter,
		Referral: wgbot.ReferralBonus{ReferrerDays: s.ReferralBonusDays, InvitedDays: s.ReferralBonusInvited}}, outbox)
	if s.WGApplyMode == reconcile.ModeNode {
		// The server row is the operator's (`wgbot servers add`) and its
		// key the node's: serve only uses it.
		a.server, err = a.store.ServerByName(ctx, s.ServerName())
	} else {
		a.server, err = a.ensureServer(ctx)
	}
	if err != nil {
		return err
	}
	var client interface {
		Device(string) (*wgtypes.Device, error)
		ConfigureDevice(string, wgtypes.Config) error
	}
	if a.wg != nil {
		client = a.wg
	}
	a.rec, err = reconcile.New(a.store, a.keys, client, reconcile.Config{
		ServerID: a.server.ID, Interface: s.WGInterface, Mode: s.WGApplyMode,
		File:           wgconf.Config{Path: s.WGConfigPath, LockPath: s.WGConfigLockPath, LockTimeout: s.WGLockTimeout},
		ResyncInterval: s.WGResyncInterval, Metrics: a.metrics,
	}, listenFunc(s), a.log)
	if err != nil {
		return err
	}
	plans, err := service.LoadPlans(s.PlansFile)
	if err != nil {
		return err
	}
	a.svc = service.New(a.store, a.keys, a.rec, service.Config{
		Server: a.server, Plans: plans, TrialDays: s.TrialDays, ClientRoutes: s.WGClientAllowedIPs,
		Keepalive: s.WGKeepalive, ApplyWait: s.WGReconcileWait, Metrics: a.metrics,
		PickServers: s.WGApplyMode == reconcile.ModeNode, NodeDownAfter: s.NodeDownAfter,
		OutageCreditAfter: s.OutageCreditAfter,
	}, nil, a.log)
	return nil
}

// ensureServer creates or updates the single host's server row from the
// settings.
func (a *app) ensureServer(ctx context.Context) (wgbot.Server, error) {
	s := a.settings
	pub, err := a.serverPublicKey()
	if err != nil {
		return wgbot.Server{}, err
	}
	return a.store.EnsureServer(ctx, wgbot.Server{
		Name: s.WGInterface, Interface: s.WGInterface, Endpoint: s.WGEndpoint, Subnet: s.WGSubnet, Subnet6: s.WGSubnet6,
		Address: serverAddress(s), PublicKey: pub, DNS: s.WGDNS, MTU: s.WGMTU,
	})
}

// masterKeyring is MASTER_KEY (with MASTER_KEY_OLD), else the key in
// MASTER_KEY_FILE, created on first use.
func masterKeyring(s config.Settings, log *slog.Logger) (*secret.Keyring, error) {
	key := s.MasterKey
	if len(key) == 0 {
		var created bool
		var err error
		key, created, err = secret.LoadOrCreateKeyFile(s.MasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("master key: %w (set MASTER_KEY or MASTER_KEY_FILE)", err)
		}
		if created {
			log.Warn("created a new master key; back it up: without it no issued config can be shown again", "file", s.MasterKeyFile)
		}
	}
	return secret.NewKeyring(key, s.MasterKeysOld...)
}

// serverPublicKey is WG_SERVER_PUBLIC_KEY, else the live interface's key
// (device mode), else the key of wg0.conf's PrivateKey.
func (a *app) serverPublicKey() (string, error) {
	s := a.settings
	var dev *wgtypes.Device
	if a.wg != nil {
		// In device mode the interface must exist before anything is
		// issued. Its peers are not needed here, and are not kept.
		var err error
		dev, err = device.Peers(a.wg, s.WGInterface, nil)
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("WireGuard interface %s not found: create it (wg-quick up %s, or ip link add %s type wireguard), "+
				"or set WG_APPLY_MODE=file to only write %s", s.WGInterface, s.WGInterface, s.WGInterface, s.WGConfigPath)
		}
		if err != nil {
			return "", fmt.Errorf("read WireGuard interface %s: %w", s.WGInterface, err)
		}
	}
	if s.WGServerPublicKey != "" {
		if _, err := wgtypes.ParseKey(s.WGServerPublicKey); err != nil {
			return "", fmt.Errorf("WG_SERVER_PUBLIC_KEY: %w", err)
		}
		return s.WGServerPublicKey, nil
	}
	if dev != nil {
		if dev.PublicKey == (wgtypes.Key{}) {
			return "", fmt.Errorf("WireGuard interface %s has no private key: give it one (wg set %s private-key FILE, or wg-quick up), "+
				"or set WG_SERVER_PUBLIC_KEY", s.WGInterface, s.WGInterface)
		}
		return dev.PublicKey.String(), nil
	}
	w, err := wgconf.NewWriter(wgconf.Config{Path: s.WGConfigPath, LockPath: s.WGConfigLockPath})
	if err != nil {
		return "", err
	}
	f, err := w.Read()
	if err != nil {
		return "", err
	}
	ifc, ok := f.Interface()
	if !ok || ifc.PrivateKey == "" {
		return "", fmt.Errorf("no server public key: set WG_SERVER_PUBLIC_KEY, or give %s an [Interface] with a PrivateKey", s.WGConfigPath)
	}
	priv, err := wgtypes.ParseKey(ifc.PrivateKey)
	if err != nil {
		return "", fmt.Errorf("%s: [Interface] PrivateKey: %w", s.WGConfigPath, err)
	}
	return priv.PublicKey().String(), nil
}

// serverAddress is the server's own tunnel address: the first host of
// WG_SUBNET, as wg-quick setups conventionally use (10.8.0.1).
func serverAddress(s config.Settings) netip.Addr {
	return s.WGSubnet.Masked().Addr().Next()
}

func serve(ctx context.Context, s config.Settings, args []string, log *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	wait := fs.Bool("wait-for-db", s.DBWait, "keep retrying until the database is reachable (DB_WAIT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := s.RequireServe(); err != nil {
		return err
	}
	a, err := openApp(ctx, s, log, *wait)
	if err != nil {
		return err
	}
	defer a.Close()
	// The first reconcile runs before any request: it reserves the
	// hand-made peers' addresses and brings a rebooted device up to date.
	if s.WGApplyMode == reconcile.ModeNode {
		log.Info("the server's node applies it; waiting for it", "server", a.server.Name)
	} else if _, err := a.rec.Reconcile(ctx); err != nil {
		log.Error("start-up reconcile failed; it will be retried", "err", err)
	}
	checkouts, routes, err := a.providers()
	if err != nil {
		return err
	}
	for _, w := range s.Warnings() {
		log.Warn("WARNING: " + w)
	}
	botCfg := telegram.Config{Token: s.BotToken, APIURL: s.TelegramAPIURL, WebhookURL: s.TelegramWebhook,
		WebhookSecret: s.TelegramSecret, AdminIDs: s.AdminIDs, SupportContact: s.SupportContact, Metrics: a.metrics,
		UserBurst: s.UserBurst, UserRate: float64(s.UserRate), Broadcasts: a.store, Audit: a.store, Username: s.BotUsername}
	var links *panel.Links
	if s.PanelURL != "" {
		if links, err = a.panelLinks(); err != nil {
			return err
		}
		botCfg.PanelLinks = links
	}
	if a.bot, err = telegram.New(a.svc, botCfg, checkouts, log); err != nil {
		return err
	}
	if links != nil {
		p, err := panel.New(links, a.store, a.svc, a.bot, log)
		if err != nil {
			return err
		}
		a.panel = p.Handler()
		if s.PanelAddr == s.HTTPAddr {
			panelRoutes(routes, a.panel)
		}
	}
	if s.TelegramWebhook != "" {
		routes["POST "+a.bot.WebhookPath()] = a.bot.WebhookHandler()
	} else {
		release, err := holdPollLock(ctx, s)
		if err != nil {
			return err
		}
		defer release()
	}
	a.extraRoutes = routes
	ln, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", s.HTTPAddr, err)
	}
	if s.MetricsAddr != s.HTTPAddr {
		if a.metricsLn, err = net.Listen("tcp", s.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on METRICS_ADDR %s: %w", s.MetricsAddr, err)
		}
	}
	if a.panel != nil && s.PanelAddr != s.HTTPAddr {
		if a.panelLn, err = net.Listen("tcp", s.PanelAddr); err != nil {
			ln.Close()
			if a.metricsLn != nil {
				a.metricsLn.Close()
			}
			return fmt.Errorf("listen on PANEL_ADDR %s: %w", s.PanelAddr, err)
		}
	}
	return a.run(ctx, ln, stdout)
}

// serveHTTP serves srv on ln in g until ctx ends, then shuts it down,
// letting requests in flight finish within grace.
func serveHTTP(g *errgroup.Group, ctx context.Context, srv *httpserver.Server, ln net.Listener, grace time.Duration) {
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		stop, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		return srv.Shutdown(stop)
	})
}

// httpLimits are the listeners' limits. The slowest request is a YooKassa
// notice: its body, the payment fetched back from the API, then up to
// WG_RECONCILE_WAIT for WireGuard to apply a device it issues; the write
// timeout covers all three with a margin.
func httpLimits(s config.Settings) httpserver.Limits {
	return httpserver.Limits{
		WriteTimeout: httpserver.DefaultReadTimeout + yookassa.Timeout + s.WGReconcileWait + 10*time.Second,
		MaxConns:     s.HTTPMaxConns,
	}
}

// loopback reports whether a listener's address is reachable from this
// machine only.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// nodeSealInterval is how often serve looks for servers whose node key
// not every peer is sealed to: one read of the servers table, so a node
// that registers a key waits about this long for its preshared keys.
const nodeSealInterval = time.Second

// run serves until ctx ends, then shuts down in order: the front doors
// (Telegram updates, HTTP webhooks) stop taking work and finish what they
// started, with the reconciler still running so no request is left waiting
// for WireGuard; then the job queue stops after its running jobs; then the
// reconciler. The caller closes the pool.
func (a *app) run(ctx context.Context, ln net.Listener, stdout io.Writer) error {
	// The job workers come last: they use the service and the bot.
	deps := jobs.Deps{Service: a.svc, Log: a.log, Broadcasts: a.store, Renewer: a.renewer}
	if a.bot != nil {
		deps.Notifier = a.bot // jobs tell users through the bot
		deps.Devices = a.bot  // and send configs a request did not
		deps.Broadcaster = a.bot
	}
	var err error
	if a.jobs, err = jobs.New(a.pool, jobs.Config{Retention: a.settings.Retention}, deps); err != nil {
		return err
	}
	var deviceProbe func() error
	if a.wg != nil {
		// Presence only: reading the device would read every peer on
		// each probe.
		deviceProbe = func() error { return deviceUp(a.settings.WGInterface) }
	}
	web := httpserver.Deps{Pool: a.pool, Reconciler: a.rec, Log: a.log, Device: deviceProbe,
		Metrics: a.metrics, Routes: a.extraRoutes}
	if a.bot != nil {
		reason := "not connected yet"
		if a.settings.TelegramWebhook != "" {
			reason = "webhook not set yet"
		}
		// Degrades: the payment webhooks are served in a Telegram outage.
		web.Checks = append(web.Checks, httpserver.Check{Name: "telegram", Reason: reason, Probe: a.bot.Ready, Degrades: true})
	}
	limits := httpLimits(a.settings)
	servers := map[net.Listener]*httpserver.Server{}
	// HTTP_ADDR takes the providers' webhooks, so it is published even on
	// loopback (behind a reverse proxy): its /readyz never shows internal
	// error text, and a Telegram outage only degrades it. The detailed
	// /readyz lives on a separate METRICS_ADDR.
	switch {
	case a.metricsLn == nil:
		if !loopback(ln.Addr()) {
			a.log.Warn("/metrics is served on HTTP_ADDR, an address others can reach; "+
				"set METRICS_ADDR to a private address such as 127.0.0.1:9100", "http", ln.Addr().String())
		}
		servers[ln] = httpserver.NewServer(httpserver.Published(web), limits)
	default:
		servers[ln] = httpserver.NewServer(httpserver.Public(web), limits)
		servers[a.metricsLn] = httpserver.NewServer(httpserver.Private(web), limits)
	}
	if a.panelLn != nil {
		// The panel's own listener serves the panel and the health routes only.
		pw := web
		pw.Routes = map[string]http.Handler{}
		panelRoutes(pw.Routes, a.panel)
		servers[a.panelLn] = httpserver.NewServer(httpserver.Public(pw), limits)
	}
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	reconciled := make(chan error, 1)
	go func() { reconciled <- a.rec.Run(background) }()
	collected := make(chan error, 1)
	if col := a.trafficCollector(); col != nil {
		// Single host, device mode: this process owns the device.
		go func() { collected <- col.Run(background) }()
	} else {
		collected <- nil
	}
	// Serve holds the master key, so it seals the preshared keys of every
	// node's peers to that node's key: after a node registers or rotates
	// its key, and for peers that missed it at issuance.
	sealed := make(chan error, 1)
	go func() { sealed <- a.svc.SealNodeKeysEvery(background, nodeSealInterval) }()
	if err := a.jobs.Start(background); err != nil {
		stopBackground()
		<-reconciled
		<-collected
		<-sealed
		return fmt.Errorf("start jobs: %w", err)
	}

	front, frontCtx := errgroup.WithContext(ctx)
	for l, srv := range servers {
		serveHTTP(front, frontCtx, srv, l, 30*time.Second)
	}
	if a.bot != nil {
		front.Go(func() error { return a.bot.Run(frontCtx) })
	}
	private := ln.Addr().String()
	if a.metricsLn != nil {
		private = a.metricsLn.Addr().String()
	}
	a.log.Info("wgbot serving", "version", version, "http", ln.Addr().String(), "metrics", private, "server", a.server.Name, "apply", a.settings.WGApplyMode)
	fmt.Fprintf(stdout, "wgbot serving on http://%s (metrics on http://%s)\n", ln.Addr(), private)
	err = front.Wait()

	stop, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if jerr := a.jobs.Stop(stop); jerr != nil {
		// Jobs still running after the grace period are cancelled (and
		// retried by the next process), never cut off by closing the pool.
		hard, cancelHard := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelHard()
		a.jobs.StopAndCancel(hard)
		if err == nil {
			err = fmt.Errorf("stop jobs: %w", jerr)
		}
	}
	stopBackground()
	<-reconciled
	<-collected
	<-sealed
	a.log.Info("wgbot stopped")
	return err
}

// providers builds the enabled payment providers: their checkouts for the
// bot and their webhook routes.
func (a *app) providers() ([]telegram.Checkout, map[string]http.Handler, error) {
	s := a.settings
	var checkouts []telegram.Checkout
	routes := map[string]http.Handler{}
	if s.YooKassaShopID != "" {
		y, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: s.YooKassaAPIURL, ShopID: s.YooKassaShopID,
			SecretKey: s.YooKassaSecretKey, ReturnURL: s.YooKassaReturnURL, AllowedIPs: s.YooKassaAllowedIPs,
			TrustProxyHeader: s.YooKassaProxyHeader, Receipts: payment.ReceiptConfig{On: s.YooKassaReceipts,
				Item: s.YooKassaReceiptItem, VATCode: s.YooKassaVATCode, TaxSystemCode: s.YooKassaTaxSystemCode}, Autorenew: s.YooKassaAutorenew},
			a.svc, a.metrics, a.log)
		if err != nil {
			return nil, nil, err
		}
		if s.YooKassaAutorenew {
			a.renewer = y
		}
		checkouts = append(checkouts, y)
		routes["POST /webhooks/yookassa"] = y
	}
	if s.CryptoPayToken != "" {
		c, err := payment.NewCryptoPay(payment.CryptoPayConfig{BaseURL: s.CryptoPayAPIURL, Token: s.CryptoPayToken, Fiat: s.CryptoPayFiat},
			a.svc, a.metrics, a.log)
		if err != nil {
			return nil, nil, err
		}
		checkouts = append(checkouts, c)
		routes["POST /webhooks/cryptopay"] = c
	}
	return checkouts, routes, nil
}
