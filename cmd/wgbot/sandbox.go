package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot/config"
	"wgbot/payment"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/secret"
	// Imported as sbx: this file's entry point is the function sandbox.
	sbx "wgbot/sandbox"
	"wgbot/telegram"
	"wgbot/telegram/tgtest"
)

// defaultSandboxAddr is where the sandbox's page is served unless --listen
// says otherwise; if the port is taken, a free one is used.
const defaultSandboxAddr = "127.0.0.1:8088"

// sandboxEndpoint is what client configs name as the server: .invalid never
// resolves, so a sandbox config imported into a real app goes nowhere.
const sandboxEndpoint = "vpn.sandbox.invalid:51820"

// sandboxServerName is the sandbox's server row: not wg0, so a sandbox
// pointed at a developer's database never rewrites the server `serve` uses.
const sandboxServerName = "sandbox"

// The sandbox's simulated users and the YooKassa emulator's shop.
const (
	sandboxAdmin     = 1001 // Alice, the page's first user
	sandboxShopID    = "sandbox-shop"
	sandboxShopToken = "sandbox-secret"
)

// sandbox runs the whole product on this machine with local stand-ins for
// the outside world: the Telegram Bot API emulator (played through a web
// page), the YooKassa emulator, a private PostgreSQL cluster unless
// DATABASE_URL reaches one on this machine, and a wg0.conf without an
// interface. Everything else is what `serve` runs: the same service, bot,
// webhooks, reconciler and jobs.
func sandbox(ctx context.Context, getenv config.Getenv, envFile string, args []string, stdout, stderr io.Writer) error {
	err := runSandbox(ctx, getenv, envFile, args, stdout, stderr)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Ctrl-C while starting: stopping is what was asked for.
		fmt.Fprintln(stderr, "wgbot sandbox: stopped")
		return nil
	}
	return err
}

func runSandbox(ctx context.Context, getenv config.Getenv, envFile string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	varFlag := fs.String("var", "var", "directory for the sandbox's database, wg0.conf, master key and log")
	listenFlag := fs.String("listen", "", "loopback host:port of the sandbox's page (default "+defaultSandboxAddr+", or a free port if that is taken)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("sandbox takes no arguments, got %q", fs.Args())}
	}
	settings, err := config.Load(getenv, envFile)
	if err != nil {
		return err
	}
	listen := *listenFlag
	if err := refuseProduction(settings, listen); err != nil {
		return err
	}

	varDir, err := filepath.Abs(*varFlag)
	if err != nil {
		return err
	}
	// Passable but not listable: as root, the private cluster below runs as
	// another user who must reach var/pg; every file here is 0600.
	if err := os.MkdirAll(varDir, 0o711); err != nil {
		return fmt.Errorf("create the sandbox directory: %w", err)
	}
	unlock, err := sbx.LockDir(varDir)
	if err != nil {
		return err
	}
	defer unlock()
	log, closeLog, err := sandboxLogger(settings, filepath.Join(varDir, "wgbot.log"), stderr)
	if err != nil {
		return err
	}
	defer closeLog()

	ln, err := sandboxListener(listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	pageURL := "http://" + ln.Addr().String()

	dbURL, dbNote, stopDB, err := sandboxDatabase(ctx, settings.DatabaseURL, filepath.Join(varDir, "pg"), log, stderr)
	if err != nil {
		return err
	}
	defer stopDB()

	s := sandboxSettings(settings, varDir, dbURL, ln.Addr().String())
	if _, err := sbx.EnsureServerConfig(s.WGConfigPath, netip.PrefixFrom(serverAddress(s), s.WGSubnet.Bits()), 51820); err != nil {
		return err
	}

	// Made here, quietly: serve's warning to back the key up is for
	// production, and this key guards only made-up users.
	if _, _, err := secret.LoadOrCreateKeyFile(s.MasterKeyFile); err != nil {
		return fmt.Errorf("sandbox master key: %w", err)
	}

	tg := tgtest.New(sbx.Token, tgtest.WithBotUsername("wgbot_sandbox_bot"))
	defer tg.Close()
	yk := yookassatest.NewServer(sandboxShopID, sandboxShopToken)
	defer yk.Close()
	// The checkout page notifies wgbot's real webhook route, as YooKassa does.
	yk.SetNotificationURL(pageURL + "/webhooks/yookassa")

	a, err := openApp(ctx, s, log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	card, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: yk.URL, ShopID: sandboxShopID, SecretKey: sandboxShopToken,
		ReturnURL: pageURL + "/", AllowedIPs: []string{"127.0.0.1", "::1"}}, a.svc, a.metrics, log)
	if err != nil {
		return err
	}
	bot, err := telegram.New(a.svc, telegram.Config{Token: sbx.Token, APIURL: tg.URL(), AdminIDs: s.AdminIDs,
		SupportContact: s.SupportContact}, []telegram.Checkout{sandboxCard{card}}, log)
	if err != nil {
		return err
	}
	a.bot = bot // run starts it and gives it to the job queue, as in serve
	client := sbx.NewClient(tg, sbx.PageInfo{BotName: "wgbot (sandbox)", Admins: s.AdminIDs,
		WGConfigPath: s.WGConfigPath, VarDir: varDir, Database: dbNote})
	a.extraRoutes = client.Routes()
	a.extraRoutes["POST /webhooks/yookassa"] = card

	if _, err := a.rec.Reconcile(ctx); err != nil {
		log.Error("start-up reconcile failed; it will be retried", "err", err)
	}
	fmt.Fprintf(stdout, "wgbot sandbox: open %s/\n", pageURL)
	fmt.Fprintf(stderr, "  the real wgbot with stand-ins for Telegram, payments, PostgreSQL (%s) and the WireGuard interface\n"+
		"  files in %s (wg0.conf, master.key, wgbot.log); Ctrl-C stops everything\n", dbNote, varDir)

	err = a.run(ctx, ln, io.Discard)
	fmt.Fprintln(stderr, "wgbot sandbox: stopped")
	return err
}

// refuseProduction lists, before anything starts, every reason these
// settings look like production's: a real bot token, a listener others can
// reach, a database on another machine.
func refuseProduction(s config.Settings, listen string) error {
	problems := sbx.CheckSafe(s.BotToken, "HTTP_ADDR", s.HTTPAddr)
	if listen != "" {
		problems = append(problems, sbx.CheckSafe("", "--listen", listen)...)
	}
	if s.DatabaseURL != "" && !localDatabase(s.DatabaseURL) {
		problems = append(problems, "DATABASE_URL: points at another machine; the sandbox fills its database with made-up users "+
			"and payments, so it only uses a database on this machine. Unset it to let the sandbox run its own PostgreSQL")
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

// sandboxSettings are the operator's settings with the outside world
// replaced: what shapes the product (plans, trial, subnet, DNS, logging)
// is kept, what reaches out (Telegram, providers, the device, keys,
// addresses) is the sandbox's own.
func sandboxSettings(s config.Settings, varDir, dbURL, listen string) config.Settings {
	s.DatabaseURL = dbURL
	s.DBWait = false
	s.MigrateOnStart = true
	s.WGInterface = sandboxServerName
	s.WGConfigPath = filepath.Join(varDir, "wg0.conf")
	s.WGConfigLockPath = s.WGConfigPath + ".lock"
	s.WGApplyMode = config.ApplyFile
	s.WGEndpoint = sandboxEndpoint
	s.WGServerPublicKey = "" // the key of the sandbox's own wg0.conf
	s.MasterKey, s.MasterKeysOld = nil, nil
	s.MasterKeyFile = filepath.Join(varDir, "master.key")
	s.BotToken = sbx.Token
	s.TelegramWebhook, s.TelegramSecret = "", ""
	s.AdminIDs = []int64{sandboxAdmin}
	s.YooKassaShopID, s.YooKassaSecretKey = "", "" // the sandbox wires its emulator itself
	s.CryptoPayToken = ""
	s.HTTPAddr = listen
	return s
}

// sandboxListener listens on addr, or on the default address, falling back
// to a free port when the default one is taken.
func sandboxListener(addr string) (net.Listener, error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on --listen %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", defaultSandboxAddr)
	if errors.Is(err, syscall.EADDRINUSE) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", defaultSandboxAddr, err)
	}
	return ln, nil
}

// sandboxDatabase returns the database to use: DATABASE_URL when it
// answers, else a private cluster in dir, which stop shuts down. note
// describes the choice for people, without a password.
func sandboxDatabase(ctx context.Context, databaseURL, dir string, log *slog.Logger, stderr io.Writer) (dbURL, note string, stop func(), err error) {
	if databaseURL != "" {
		ping, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgx.Connect(ping, databaseURL)
		cancel()
		if err == nil {
			conn.Close(ctx)
			return databaseURL, config.RedactURL(databaseURL), func() {}, nil
		}
		fmt.Fprintf(stderr, "wgbot sandbox: DATABASE_URL does not answer (%v); starting a private PostgreSQL instead\n", err)
	}
	c, err := sbx.StartCluster(ctx, dir, log)
	if err != nil {
		return "", "", nil, fmt.Errorf("sandbox database: %w", err)
	}
	stop = func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(stderr, "wgbot sandbox:", err)
		}
	}
	return c.URL(), "private cluster in " + dir, stop, nil
}

// localDatabase reports whether a DATABASE_URL names this machine: a
// loopback address, localhost or a Unix socket directory.
func localDatabase(raw string) bool {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return false
	}
	hosts := []string{cfg.Host}
	for _, fb := range cfg.Fallbacks {
		hosts = append(hosts, fb.Host)
	}
	for _, h := range hosts {
		if filepath.IsAbs(h) {
			continue // a Unix socket
		}
		if sbx.CheckSafe("", "", net.JoinHostPort(h, "5432")) != nil {
			return false
		}
	}
	return true
}

// sandboxLogger logs everything at LOG_LEVEL to the sandbox's log file and
// warnings to the terminal, which stays free for the URL.
func sandboxLogger(s config.Settings, path string, stderr io.Writer) (*slog.Logger, func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open the sandbox log: %w", err)
	}
	file := newLogger(s, f).Handler()
	terminal := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(slog.NewMultiHandler(file, terminal)), func() { f.Close() }, nil
}

// sandboxCard is the YooKassa adapter, talking to the emulator, under a
// name that says no money moves.
type sandboxCard struct{ *payment.YooKassa }

func (sandboxCard) Title(lang string) string {
	if lang == "ru" {
		return "Тестовая карта (песочница)"
	}
	return "Sandbox card"
}
