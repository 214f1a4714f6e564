package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot/config"
	"wgbot/panel"
	"wgbot/payment"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/reconcile"
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

// sandboxServerName is the sandbox's server row; sbx.CheckDatabase
// refuses a database with any other.
const sandboxServerName = sbx.ServerName

// The sandbox's simulated users and the YooKassa emulator's shop.
const (
	sandboxAdmin     = 1001 // Alice, the page's first user
	sandboxShopID    = "sandbox-shop"
	sandboxShopToken = "sandbox-secret"
)

// sandbox runs the whole product on this machine with local stand-ins for
// the outside world: the Telegram Bot API emulator (played through a web
// page), the YooKassa emulator, a private PostgreSQL cluster (or a database
// of its own on the server DATABASE_URL names, if that is on this machine
// and answers), and a wg0.conf without an interface. Everything else is what `serve` runs: the same service, bot,
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

	ln, err := sandboxListener(listen, defaultSandboxAddr, stderr)
	if err != nil {
		return err
	}
	defer ln.Close()
	pageURL := "http://" + ln.Addr().String()

	db, err := sandboxDatabase(ctx, settings.DatabaseURL, filepath.Join(varDir, "pg"), log, stderr)
	if err != nil {
		return err
	}
	defer db.stop()
	dbURL, dbNote := db.url, db.note

	s := sandboxSettings(settings, varDir, dbURL, ln.Addr().String())
	if _, err := sbx.EnsureServerConfig(s.WGConfigPath, netip.PrefixFrom(serverAddress(s), s.WGSubnet.Bits()), 51820); err != nil {
		return err
	}

	// Made here, quietly: serve's warning to back the key up is for
	// production, and this key guards only made-up users.
	if _, _, err := secret.LoadOrCreateKeyFile(s.MasterKeyFile); err != nil {
		return fmt.Errorf("sandbox master key: %w", err)
	}

	yk := yookassatest.NewServer(sandboxShopID, sandboxShopToken)
	defer yk.Close()
	// The checkout page notifies wgbot's real webhook route, as YooKassa does.
	yk.SetNotificationURL(pageURL + "/webhooks/yookassa")

	a, err := openApp(ctx, s, log, false)
	if err != nil {
		return err
	}
	defer a.Close()

	// The emulator continues its update ids from the last run (its state
	// file, and past the ids the database still remembers if that file was
	// lost), as Telegram's keep growing: the bot drops ids it handled within
	// the last day as redeliveries, so ids restarting at 1 would go
	// unanswered.
	latest, err := a.store.LatestTelegramUpdate(ctx, sbx.BotID)
	if err != nil {
		return err
	}
	// The chats are kept too, as Telegram keeps them, so a restart shows
	// each user's history and the bot can still edit its earlier messages.
	tg, err := tgtest.NewHandler(sbx.Token, tgtest.WithBotUsername("wgbot_sandbox_bot"),
		tgtest.WithUpdateIDFile(filepath.Join(varDir, "telegram-update-id")), tgtest.WithFirstUpdateID(latest+1),
		tgtest.WithChatsFile(filepath.Join(varDir, "telegram-chats.json")))
	if err != nil {
		return fmt.Errorf("sandbox Telegram: %w", err)
	}
	tgServer := httptest.NewServer(tg)
	defer func() {
		tg.Close() // ends the bot's long poll, which tgServer.Close waits for
		tgServer.Close()
	}()

	card, err := payment.NewYooKassa(payment.YooKassaConfig{BaseURL: yk.URL, ShopID: sandboxShopID, SecretKey: sandboxShopToken,
		ReturnURL: pageURL + "/", AllowedIPs: []string{"127.0.0.1", "::1"}}, a.svc, a.metrics, log)
	if err != nil {
		return err
	}
	// As in serve; run gives the bot to the job queue, which sends
	// broadcasts from a.store.
	// The web panel on the sandbox's own address: /panel in the admin's
	// chat gives its sign-in link.
	a.settings.PanelURL = pageURL
	links, err := a.panelLinks()
	if err != nil {
		return err
	}
	bot, err := telegram.New(a.svc, telegram.Config{Token: sbx.Token, APIURL: tgServer.URL, AdminIDs: s.AdminIDs,
		SupportContact: s.SupportContact, Metrics: a.metrics, UserBurst: s.UserBurst, UserRate: float64(s.UserRate),
		Broadcasts: a.store, PanelLinks: links, Audit: a.store}, []telegram.Checkout{sandboxCard{card}}, log)
	if err != nil {
		return err
	}
	web, err := panel.New(links, a.store, a.svc, bot, log)
	if err != nil {
		return err
	}
	a.bot = bot // run starts it and gives it to the job queue, as in serve
	client, err := sbx.NewClient(tg, sbx.PageInfo{BotName: "wgbot (sandbox)", Admins: s.AdminIDs,
		WGConfigPath: s.WGConfigPath, VarDir: varDir, Database: dbNote}, filepath.Join(varDir, "sandbox-users.json"))
	if err != nil {
		return err
	}
	a.extraRoutes = client.Routes()
	a.extraRoutes["POST /webhooks/yookassa"] = card
	panelRoutes(a.extraRoutes, web.Handler())

	if _, err := a.rec.Reconcile(ctx); err != nil {
		log.Error("start-up reconcile failed; it will be retried", "err", err)
	}
	fmt.Fprintf(stdout, "wgbot sandbox: open %s/\n", pageURL)
	fmt.Fprintf(stderr, "  the real wgbot with stand-ins for Telegram, payments, PostgreSQL (%s) and the WireGuard interface\n"+
		"  files in %s (wg0.conf, master.key, wgbot.log); Ctrl-C stops everything\n", dbNote, varDir)
	fmt.Fprintf(stderr, "  the operator's commands work on its database while it runs%s:\n    DATABASE_URL=%s %s users list\n",
		db.shellNote, db.shellURL, sbx.ShellQuote(wgbotCommand()))

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
	s.WGApplyMode = reconcile.ModeFile
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

// sandboxListener listens on addr or, without one, on preferred, falling
// back to a free port when that one is taken; the fallback is said on
// stderr, since the port is not the one the README names.
func sandboxListener(addr, preferred string, stderr io.Writer) (net.Listener, error) {
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on --listen %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", preferred)
	if errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(preferred)
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err == nil {
			fmt.Fprintf(stderr, "wgbot sandbox: %s is taken (another sandbox or program listens there); using %s instead "+
				"(--listen %s picks one)\n", preferred, ln.Addr(), preferred)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", preferred, err)
	}
	return ln, nil
}

// sandboxDB is the database the sandbox uses.
type sandboxDB struct {
	url  string
	note string // describes the choice for people, without a password
	// shellURL is url for a person to paste into a shell, and shellNote
	// what they must add to it, if anything.
	shellURL, shellNote string
	stop                func()
}

// sandboxDatabase returns the database to use: the sandbox's own database
// on the server DATABASE_URL names when that answers (never the database
// it names: that may be production's, whose jobs the sandbox would run
// against its emulators), else a private cluster in dir, which stop shuts
// down. Either way the database is checked to be a sandbox's before
// anything touches it.
func sandboxDatabase(ctx context.Context, databaseURL, dir string, log *slog.Logger, stderr io.Writer) (sandboxDB, error) {
	if databaseURL != "" {
		ping, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgx.Connect(ping, databaseURL)
		cancel()
		if err == nil {
			conn.Close(ctx)
			own, err := sbx.OwnDatabase(ctx, databaseURL)
			if err != nil {
				return sandboxDB{}, fmt.Errorf("sandbox database: %w", err)
			}
			db := sandboxDB{url: own, note: config.RedactURL(own), shellURL: sbx.ShellQuote(config.RedactURL(own)), stop: func() {}}
			if db.note != own {
				db.shellNote = " (put your DATABASE_URL's password in for xxxxx)"
			}
			return db, nil
		}
		fmt.Fprintf(stderr, "wgbot sandbox: DATABASE_URL does not answer (%v); starting a private PostgreSQL instead\n", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
		// initdb takes a few seconds, during which nothing else shows.
		fmt.Fprintf(stderr, "wgbot sandbox: creating its PostgreSQL cluster in %s (first run only)…\n", dir)
	}
	c, err := sbx.StartCluster(ctx, dir, log)
	if err != nil {
		return sandboxDB{}, fmt.Errorf("sandbox database: %w", err)
	}
	stop := func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(stderr, "wgbot sandbox:", err)
		}
	}
	if err := sbx.CheckDatabase(ctx, c.URL()); err != nil {
		stop()
		return sandboxDB{}, fmt.Errorf("sandbox database: %w", err)
	}
	return sandboxDB{url: c.URL(), note: "private cluster in " + dir, shellURL: c.ShellURL(), stop: stop}, nil
}

// wgbotCommand is how a person starts this binary: its absolute path
// (`make run` builds bin/wgbot), or wgbot when that is unknown.
func wgbotCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "wgbot"
	}
	return exe
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
// warnings to the terminal, which stays free for the URL. The page's
// polling is logged at debug only.
func sandboxLogger(s config.Settings, path string, stderr io.Writer) (*slog.Logger, func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open the sandbox log: %w", err)
	}
	file := sbx.QuietPolling(newLogger(s, f).Handler())
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

// TitleVia names the card inside a sentence, declined in Russian ("через
// тестовую карту"); without it the embedded YooKassa's would name a bank
// card.
func (sandboxCard) TitleVia(lang string) string {
	if lang == "ru" {
		return "тестовую карту"
	}
	return "the test card"
}
