package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"wgbot"
	"wgbot/config"
	"wgbot/postgres"
)

// exitNotFound is the exit code when a command names a user, server or
// subscription that does not exist, so a script can tell "no such user"
// from an outage.
const exitNotFound = 5

func isNotFound(err error) bool { return wgbot.ErrorCode(err) == wgbot.ENotFound }

// Usage lines of the operator commands, quoted in their errors.
const (
	usageUsers     = "users list [--json] | users show <telegram id|@username> [--json]"
	usageGrant     = "grant <telegram id|@username> <days> [--devices K] [--json]"
	usageRevoke    = "revoke <telegram id|@username> [--json]"
	usagePeers     = "peers list [--server NAME] [--status active|disabled|revoked] [--json]"
	usageIssue     = "issue --telegram-id N --days D [--devices K] [--out FILE] [--json]"
	usageReconcile = "reconcile [--dry-run] [--json]"
)

// operator runs the operator's commands. Reads use the database alone, so
// they work while WireGuard is down; changes go through the service (the
// bot's rules) and then one in-process reconcile, so they take effect even
// when no `wgbot serve` is running. A running serve is woken by the
// commit's NOTIFY as well. The two may reconcile at once: wg0.conf writes
// are serialized by its flock, and whichever of them applied an older
// snapshot is followed by a NOTIFY (the commit's, or applyNow's) that
// makes serve apply the newest one within moments.
func operator(ctx context.Context, s config.Settings, cmd string, args []string, log *slog.Logger, stdout io.Writer) error {
	if s.LogLevel != "debug" {
		// The command's own output says what happened; the reconciler's
		// info lines would only repeat it on stderr.
		log = slog.New(minLevel{Handler: log.Handler(), min: slog.LevelWarn})
	}
	op := &operatorCmd{settings: s, log: log, out: stdout}
	var err error
	switch cmd {
	case "users":
		err = op.users(ctx, args)
	case "grant":
		err = op.grant(ctx, args)
	case "revoke":
		err = op.revoke(ctx, args)
	case "peers":
		err = op.peers(ctx, args)
	case "issue":
		err = op.issue(ctx, args)
	case "reconcile":
		err = op.reconcile(ctx, args)
	case "servers":
		err = op.servers(ctx, args)
	case "promo":
		err = op.promo(ctx, args)
	case "import":
		err = op.importClients(ctx, args)
	default:
		err = usageError{fmt.Sprintf("unknown operator command %q", cmd)}
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return schemaHint(err)
}

// operatorCmd is one invocation: settings and where its output goes.
type operatorCmd struct {
	settings config.Settings
	log      *slog.Logger
	out      io.Writer
	json     bool
}

// minLevel drops log records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}

// errHelpShown ends a command after -h printed its usage.
var errHelpShown = errors.New("help shown")

// flags returns a flag set for one command with the --json every command
// takes.
func (op *operatorCmd) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("wgbot "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help goes to stdout
	fs.BoolVar(&op.json, "json", false, "print JSON for scripts instead of text")
	return fs
}

// parse parses flags that may come before, between or after the
// positional arguments (`users show 42 --json`), where flag.Parse alone
// would stop at the first positional one. It wants exactly npos of them.
func (op *operatorCmd) parse(fs *flag.FlagSet, usage string, args []string, npos int) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(op.out, "usage: wgbot %s\n", usage)
			fs.SetOutput(op.out)
			fs.PrintDefaults()
			return nil, errHelpShown
		} else if err != nil {
			return nil, usageError{fmt.Sprintf("%v\nusage: wgbot %s", err, usage)}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if len(positional) != npos {
		return nil, usageError{fmt.Sprintf("want %d argument(s), got %d\nusage: wgbot %s", npos, len(positional), usage)}
	}
	return positional, nil
}

// schemaHint tells an operator who points the CLI at an empty database
// what to run.
func schemaHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return fmt.Errorf("%w (the database has no wgbot schema: run `wgbot migrate`)", err)
	}
	return err
}

// openStore is the read-only path: the database alone, no master key, no
// WireGuard, no writes, so the operator can look around while the VPN
// interface is down.
func (op *operatorCmd) openStore(ctx context.Context) (*postgres.Store, func(), error) {
	pool, err := openPool(ctx, op.settings)
	if err != nil {
		return nil, nil, err
	}
	return postgres.NewStore(pool, postgres.Options{LockID: op.settings.DBIPAllocLockID, Quarantine: op.settings.WGAddressQuarantine}, nil), pool.Close, nil
}

// userFinder is what findUser needs; the store and the service both have it.
type userFinder interface {
	UserByTelegramID(ctx context.Context, telegramID int64) (wgbot.User, error)
	UserByUsername(ctx context.Context, username string) (wgbot.User, error)
}

// findUser resolves a Telegram id or an @username; a miss is a not-found
// error that says how users come to exist.
func findUser(ctx context.Context, f userFinder, ref string) (wgbot.User, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		u, err := f.UserByTelegramID(ctx, id)
		if errors.Is(err, wgbot.ErrUserNotFound) {
			return u, wgbot.Errorf(wgbot.ENotFound, "user_not_found",
				"no user with Telegram id %d: users are registered when they open the bot (or by `wgbot issue`)", id)
		}
		return u, err
	}
	name := strings.TrimPrefix(ref, "@")
	if name == "" || strings.ContainsAny(name, " @") {
		return wgbot.User{}, usageError{fmt.Sprintf("%q is neither a Telegram id nor an @username", ref)}
	}
	u, err := f.UserByUsername(ctx, name)
	if errors.Is(err, wgbot.ErrUserNotFound) {
		return u, wgbot.Errorf(wgbot.ENotFound, "user_not_found", "no user with username @%s (usernames are as last seen by the bot)", name)
	}
	return u, err
}
