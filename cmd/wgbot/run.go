package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot/config"
	"wgbot/logs"
	"wgbot/postgres"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes: scripts and systemd can tell a bad setting from an outage.
const (
	exitFailure     = 1
	exitUsage       = 2
	exitConfig      = 3
	exitUnavailable = 4
)

// usageError is a wrong command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	var ce *postgres.ConnectError
	switch {
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		return exitUsage
	case config.IsConfigError(err):
		return exitConfig
	case errors.As(err, &ce):
		return exitUnavailable
	case isNotFound(err):
		return exitNotFound
	}
	return exitFailure
}

const usage = `usage: wgbot [--env-file FILE] COMMAND [ARGS]

commands:
  serve     run the bot, the webhooks and the reconciler
  node      the agent on one WireGuard host of several: --server NAME (docs/operations.md)
  migrate   apply database migrations and exit
  check     validate settings, connect to the database, report what was found
  sandbox   the whole product on this machine: no Telegram token, no root, one URL
  version   print the version

operator commands (same rules and reconciler as the bot; --json for scripts):
  users list | users show <telegram id|@username>
  grant <telegram id|@username> <days> [--devices K]
  revoke <telegram id|@username>
  peers list [--server NAME] [--status active|disabled|revoked]
  issue --telegram-id N --days D [--devices K] [--out FILE]
  reconcile [--dry-run]
  servers add NAME --location L --endpoint HOST:PORT --subnet CIDR [--capacity N] | servers list
  servers drain|enable|remove NAME   drain: no new peers there, existing ones keep working
  promo add CODE --days N | --percent N | --off MINOR_UNITS --currency CUR [--uses N] [--per-user N]
            [--until YYYY-MM-DD] [--plans a,b] [--new-users] | promo list | promo disable CODE
  import --from wg-quick|wg-easy|wireguard-ui PATH [--apply] [--days N|--no-expiry] [--claims FILE --bot USERNAME]
                                    take over an old server's clients (dry run unless --apply; docs/operations.md)
  rekey                             re-seal every client key with MASTER_KEY (then drop MASTER_KEY_OLD)
  panel-link --admin ID             a one-time sign-in link to the web panel (PANEL_URL) for an admin
`

// run is the whole program; main only gives it the process's environment.
func run(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("wgbot", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprint(stderr, usage) }
	envFile := global.String("env-file", "", "read settings from this .env file (default: ./.env if present)")
	if err := global.Parse(args[1:]); err != nil {
		return err
	}
	if global.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, cmdArgs := global.Arg(0), global.Args()[1:]
	if cmd == "version" {
		fmt.Fprintln(stdout, "wgbot", version)
		return nil
	}
	if cmd == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if cmd == "sandbox" {
		return sandbox(ctx, getenv, *envFile, cmdArgs, stdout, stderr)
	}
	settings, err := config.Load(getenv, *envFile)
	if err != nil {
		return err
	}
	log := newLogger(settings, stderr)
	switch cmd {
	case "serve":
		return serve(ctx, settings, cmdArgs, log, stdout)
	case "node":
		return node(ctx, settings, cmdArgs, log, stdout)
	case "migrate":
		return migrate(ctx, settings, stdout)
	case "check":
		return check(ctx, settings, stdout)
	case "rekey":
		return rekey(ctx, settings, log, stdout)
	case "panel-link":
		return panelLink(ctx, settings, cmdArgs, log, stdout)
	case "users", "grant", "revoke", "peers", "issue", "reconcile", "servers", "promo", "import":
		return operator(ctx, settings, cmd, cmdArgs, log, stdout)
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func newLogger(s config.Settings, w io.Writer) *slog.Logger {
	return logs.New(w, s.LogFormat, s.LogLevel)
}

func openPool(ctx context.Context, s config.Settings) (*pgxpool.Pool, error) {
	if err := s.RequireDatabase(); err != nil {
		return nil, err
	}
	return postgres.Open(ctx, poolConfig(s))
}

func poolConfig(s config.Settings) postgres.PoolConfig {
	return postgres.PoolConfig{
		URL:             s.DatabaseURL,
		MinConns:        s.DBPoolMin,
		MaxConns:        s.DBPoolMax,
		ConnectTimeout:  s.DBConnectTimeout,
		ApplicationName: "wgbot",
	}
}

func migrate(ctx context.Context, s config.Settings, stdout io.Writer) error {
	pool, err := openPool(ctx, s)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := postgres.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied %d migration(s): %s\n", len(applied), strings.Join(applied, ", "))
	return nil
}

func check(ctx context.Context, s config.Settings, stdout io.Writer) error {
	fmt.Fprintln(stdout, "settings:")
	for _, line := range s.Redacted() {
		fmt.Fprintln(stdout, "  "+line)
	}
	for _, w := range s.Warnings() {
		fmt.Fprintln(stdout, "WARNING: "+w)
	}
	pool, err := openPool(ctx, s)
	if err != nil {
		return err
	}
	defer pool.Close()
	report, err := postgres.Inspect(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "database:")
	for _, line := range report {
		fmt.Fprintln(stdout, "  "+line)
	}
	if err := s.RequireServe(); err != nil {
		fmt.Fprintln(stdout, "not ready to serve:", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return err
	}
	fmt.Fprintln(stdout, "ok: ready to serve")
	return nil
}
