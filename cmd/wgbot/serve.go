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
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/config"
	"wgbot/httpserver"
	"wgbot/jobs"
	"wgbot/metrics"
	"wgbot/payment"
	"wgbot/postgres"
	"wgbot/reconcile"
	"wgbot/secret"
	"wgbot/service"
	"wgbot/telegram"
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
	wg       *wgctrl.Client // nil unless WG_APPLY_MODE=device
	rec      *reconcile.Reconciler
	svc      *service.Service
	jobs     *river.Client[pgx.Tx]
	jobDeps  *jobs.Deps
	metrics  *metrics.Metrics
	bot      *telegram.Bot // nil: no Telegram front door (operator commands)
	// extraRoutes are served by run next to the product's own routes:
	// the sandbox's page and its API. Empty for serve.
	extraRoutes map[string]http.Handler
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
	key := s.MasterKey
	if len(key) == 0 {
		var created bool
		var err error
		key, created, err = secret.LoadOrCreateKeyFile(s.MasterKeyFile)
		if err != nil {
			return fmt.Errorf("master key: %w (set MASTER_KEY or MASTER_KEY_FILE)", err)
		}
		if created {
			a.log.Warn("created a new master key; back it up: without it no issued config can be shown again", "file", s.MasterKeyFile)
		}
	}
	var err error
	if a.keys, err = secret.NewKeyring(key, s.MasterKeysOld...); err != nil {
		return err
	}
	if s.WGApplyMode == config.ApplyDevice {
		if a.wg, err = wgctrl.New(); err != nil {
			return fmt.Errorf("open WireGuard control: %w", err)
		}
	}
	pub, err := a.serverPublicKey()
	if err != nil {
		return err
	}
	a.store = postgres.NewStore(a.pool, s.DBIPAllocLockID, s.WGAddressQuarantine).WithRenewalGrace(s.RenewalGrace)
	a.jobDeps = &jobs.Deps{Log: a.log}
	if a.jobs, err = jobs.New(a.pool, jobs.Config{Retention: s.Retention}, a.jobDeps); err != nil {
		return err
	}
	a.store.UseJobs(a.jobs, s.ReminderDays)
	a.server, err = a.store.EnsureServer(ctx, wgbot.Server{
		Name: s.WGInterface, Interface: s.WGInterface, Endpoint: s.WGEndpoint, Subnet: s.WGSubnet, Subnet6: s.WGSubnet6,
		Address: serverAddress(s), PublicKey: pub, DNS: s.WGDNS, MTU: s.WGMTU,
	})
	if err != nil {
		return err
	}
	listen := func(ctx context.Context) (*pgx.Conn, error) {
		cfg, err := pgx.ParseConfig(s.DatabaseURL)
		if err != nil {
			return nil, err
		}
		cfg.ConnectTimeout = s.DBConnectTimeout
		cfg.RuntimeParams["application_name"] = "wgbot-listen"
		return pgx.ConnectConfig(ctx, cfg)
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
	}, listen, a.log)
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
	}, nil, a.log)
	a.jobDeps.Service = a.svc
	return nil
}

// serverPublicKey is WG_SERVER_PUBLIC_KEY, else the live interface's key
// (device mode), else the key of wg0.conf's PrivateKey.
func (a *app) serverPublicKey() (string, error) {
	s := a.settings
	var device *wgtypes.Device
	if a.wg != nil {
		// In device mode the interface must exist before anything is issued.
		var err error
		device, err = a.wg.Device(s.WGInterface)
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
	if device != nil {
		return device.PublicKey.String(), nil
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
	if _, err := a.rec.Reconcile(ctx); err != nil {
		log.Error("start-up reconcile failed; it will be retried", "err", err)
	}
	checkouts, routes, err := a.providers()
	if err != nil {
		return err
	}
	a.bot, err = telegram.New(a.svc, telegram.Config{Token: s.BotToken, APIURL: s.TelegramAPIURL, WebhookURL: s.TelegramWebhook,
		WebhookSecret: s.TelegramSecret, AdminIDs: s.AdminIDs, SupportContact: s.SupportContact, Metrics: a.metrics}, checkouts, log)
	if err != nil {
		return err
	}
	if s.TelegramWebhook != "" {
		routes["POST "+a.bot.WebhookPath()] = a.bot.WebhookHandler()
	}
	a.extraRoutes = routes
	ln, err := net.Listen("tcp", s.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", s.HTTPAddr, err)
	}
	return a.run(ctx, ln, stdout)
}

// run serves until ctx ends, then shuts down in order: the front doors
// (Telegram updates, HTTP webhooks) stop taking work and finish what they
// started, with the reconciler still running so no request is left waiting
// for WireGuard; then the job queue stops after its running jobs; then the
// reconciler. The caller closes the pool.
func (a *app) run(ctx context.Context, ln net.Listener, stdout io.Writer) error {
	if a.bot != nil {
		a.jobDeps.Notifier = a.bot // jobs tell users through the bot
	}
	var device func() error
	if a.wg != nil {
		// Presence only: reading the device through wgctrl would parse
		// every peer on each probe.
		device = func() error {
			_, err := net.InterfaceByName(a.settings.WGInterface)
			if err != nil {
				return fmt.Errorf("WireGuard interface %s: %w", a.settings.WGInterface, err)
			}
			return nil
		}
	}
	srv := &http.Server{
		Handler: httpserver.New(httpserver.Deps{Pool: a.pool, Reconciler: a.rec, Log: a.log, Device: device,
			Metrics: a.metrics, Routes: a.extraRoutes}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	reconciled := make(chan error, 1)
	go func() { reconciled <- a.rec.Run(background) }()
	if err := a.jobs.Start(background); err != nil {
		stopBackground()
		<-reconciled
		return fmt.Errorf("start jobs: %w", err)
	}

	front, frontCtx := errgroup.WithContext(ctx)
	front.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	front.Go(func() error {
		<-frontCtx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	})
	if a.bot != nil {
		front.Go(func() error { return a.bot.Run(frontCtx) })
	}
	a.log.Info("wgbot serving", "version", version, "http", ln.Addr().String(), "server", a.server.Name, "apply", a.settings.WGApplyMode)
	fmt.Fprintf(stdout, "wgbot serving on http://%s\n", ln.Addr())
	err := front.Wait()

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
			TrustProxyHeader: s.YooKassaProxyHeader}, a.svc, a.metrics, a.log)
		if err != nil {
			return nil, nil, err
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
