package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"wgbot"
	"wgbot/config"
	"wgbot/postgres"
	"wgbot/reconcile"
	"wgbot/wireguard"
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
	return postgres.NewStore(pool, op.settings.DBIPAllocLockID, op.settings.WGAddressQuarantine), pool.Close, nil
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

// --- users ---

func (op *operatorCmd) users(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "show") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(op.out, "usage: wgbot %s\n", usageUsers)
			return nil
		}
		return usageError{"users: want list or show\nusage: wgbot " + usageUsers}
	}
	fs := op.flags("users " + args[0])
	if args[0] == "list" {
		if _, err := op.parse(fs, usageUsers, args[1:], 0); err != nil {
			return err
		}
		return op.usersList(ctx)
	}
	pos, err := op.parse(fs, usageUsers, args[1:], 1)
	if err != nil {
		return err
	}
	return op.usersShow(ctx, pos[0])
}

func (op *operatorCmd) usersList(ctx context.Context) error {
	store, closeDB, err := op.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	list, err := store.ListUsers(ctx)
	if err != nil {
		return err
	}
	rows := make([]userRow, len(list))
	for i, u := range list {
		rows[i] = userRow{userView: viewUser(u.User), Subscription: viewSubscriptionPtr(u.Subscription), Devices: u.Devices}
	}
	if op.json {
		return op.writeJSON(rows)
	}
	tw := newTable(op.out)
	fmt.Fprintln(tw, "ID\tTELEGRAM ID\tUSERNAME\tLANGUAGE\tSUBSCRIPTION\tEXPIRES (UTC)\tDEVICES")
	for _, r := range rows {
		status, expires := "-", "-"
		if r.Subscription != nil {
			status, expires = r.Subscription.label(), fmtTime(r.Subscription.ExpiresAt)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.TelegramID, at(r.Username), dash(r.Language), status, expires, r.Devices)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(op.out, "%d user(s)\n", len(rows))
	return nil
}

func (op *operatorCmd) usersShow(ctx context.Context, ref string) error {
	store, closeDB, err := op.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	u, err := findUser(ctx, store, ref)
	if err != nil {
		return err
	}
	subs, err := store.Subscriptions(ctx, u.ID)
	if err != nil {
		return err
	}
	peers, err := store.ListPeers(ctx, postgres.PeerFilter{UserID: u.ID})
	if err != nil {
		return err
	}
	payments, err := store.UserPayments(ctx, u.ID)
	if err != nil {
		return err
	}
	v := userDetail{User: viewUser(u), Subscriptions: []subscriptionView{}, Devices: []peerView{}, Payments: []paymentView{}}
	for _, s := range subs {
		v.Subscriptions = append(v.Subscriptions, viewSubscription(s))
	}
	for _, p := range peers {
		v.Devices = append(v.Devices, viewPeer(p))
	}
	for _, p := range payments {
		v.Payments = append(v.Payments, viewPayment(p))
	}
	if op.json {
		return op.writeJSON(v)
	}
	tw := newTable(op.out)
	fmt.Fprintf(tw, "user\t%d\n", v.User.ID)
	fmt.Fprintf(tw, "telegram id\t%d\n", v.User.TelegramID)
	fmt.Fprintf(tw, "username\t%s\n", at(v.User.Username))
	fmt.Fprintf(tw, "name\t%s\n", dash(v.User.FirstName))
	fmt.Fprintf(tw, "language\t%s\n", dash(v.User.Language))
	fmt.Fprintf(tw, "registered\t%s UTC\n", fmtTime(v.User.CreatedAt))
	fmt.Fprintf(tw, "banned\t%s\n", yesNo(v.User.Banned))
	fmt.Fprintf(tw, "blocked the bot\t%s\n", yesNo(v.User.BlockedBot))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(op.out, "\nsubscriptions:")
	if len(v.Subscriptions) == 0 {
		fmt.Fprintln(op.out, "  none")
	} else {
		tw = newTable(op.out)
		fmt.Fprintln(tw, "  ID\tPLAN\tSTATUS\tDEVICE LIMIT\tSTARTS (UTC)\tEXPIRES (UTC)")
		for _, s := range v.Subscriptions {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Plan, s.label(), s.DeviceLimit, fmtTime(s.StartsAt), fmtTime(s.ExpiresAt))
		}
		tw.Flush()
	}

	fmt.Fprintln(op.out, "\ndevices:")
	if len(v.Devices) == 0 {
		fmt.Fprintln(op.out, "  none")
	} else {
		tw = newTable(op.out)
		fmt.Fprintln(tw, "  ID\tNAME\tSERVER\tIP\tIPV6\tSTATUS\tPUBLIC KEY\tCREATED (UTC)")
		for _, p := range v.Devices {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Server, p.IP, dash(p.IP6), p.Status, p.PublicKey, fmtTime(p.CreatedAt))
		}
		tw.Flush()
	}

	fmt.Fprintln(op.out, "\npayments:")
	if len(v.Payments) == 0 {
		fmt.Fprintln(op.out, "  none")
		return nil
	}
	tw = newTable(op.out)
	fmt.Fprintln(tw, "  ID\tPROVIDER\tPAYMENT ID\tAMOUNT (MINOR UNITS)\tDAYS\tSTATUS\tAPPLIED (UTC)\tFLAG")
	for _, p := range v.Payments {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d %s\t%d\t%s\t%s\t%s\n", p.ID, p.Provider, p.ProviderPaymentID, p.Amount, p.Currency,
			p.Days, p.Status, fmtTime(p.AppliedAt), dash(p.Flagged))
	}
	return tw.Flush()
}

// --- peers ---

func (op *operatorCmd) peers(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(op.out, "usage: wgbot %s\n", usagePeers)
			return nil
		}
		return usageError{"peers: want list\nusage: wgbot " + usagePeers}
	}
	fs := op.flags("peers list")
	server := fs.String("server", "", "only peers of this server (its name is its WG_INTERFACE)")
	status := fs.String("status", "", "only peers in this status: active, disabled (expired) or revoked")
	if _, err := op.parse(fs, usagePeers, args[1:], 0); err != nil {
		return err
	}
	switch *status {
	case "", wgbot.PeerActive, wgbot.PeerDisabled, wgbot.PeerRevoked:
	default:
		return usageError{fmt.Sprintf("--status %q: want active, disabled or revoked\nusage: wgbot %s", *status, usagePeers)}
	}
	store, closeDB, err := op.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	if *server != "" {
		names, err := store.ServerNames(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(names, *server) {
			return wgbot.Errorf(wgbot.ENotFound, "server_not_found", "no server named %q; servers: %s",
				*server, dash(strings.Join(names, ", ")))
		}
	}
	list, err := store.ListPeers(ctx, postgres.PeerFilter{Server: *server, Status: *status})
	if err != nil {
		return err
	}
	rows := make([]peerView, len(list))
	dual := false
	for i, p := range list {
		rows[i] = viewPeer(p)
		dual = dual || rows[i].IP6 != ""
	}
	if op.json {
		return op.writeJSON(rows)
	}
	tw := newTable(op.out)
	v6 := func(p peerView) string { return "" }
	head := "ID\tSERVER\tTELEGRAM ID\tUSERNAME\tNAME\tIP\t"
	if dual {
		head += "IPV6\t"
		v6 = func(p peerView) string { return dash(p.IP6) + "\t" }
	}
	fmt.Fprintln(tw, head+"STATUS\tPUBLIC KEY\tCREATED (UTC)")
	for _, p := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s%s\t%s\t%s\n", p.ID, p.Server, p.TelegramID, at(p.Username), p.Name, p.IP, v6(p),
			p.Status, p.PublicKey, fmtTime(p.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(op.out, "%d peer(s)\n", len(rows))
	return nil
}

// --- grant and revoke ---

func (op *operatorCmd) grant(ctx context.Context, args []string) error {
	fs := op.flags("grant")
	devices := fs.Int("devices", 1, "the least device limit the subscription keeps")
	pos, err := op.parse(fs, usageGrant, args, 2)
	if err != nil {
		return err
	}
	days, err := strconv.Atoi(pos[1])
	if err != nil || days < 1 || days > 3650 {
		return usageError{fmt.Sprintf("days: want a whole number from 1 to 3650, got %q\nusage: wgbot %s", pos[1], usageGrant)}
	}
	if *devices < 1 {
		return usageError{fmt.Sprintf("--devices: want 1 or more, got %d", *devices)}
	}
	a, err := openApp(ctx, op.settings, op.log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := findUser(ctx, a.svc, pos[0])
	if err != nil {
		return err
	}
	sub, delivery, err := a.svc.Grant(ctx, u, days, *devices)
	if err != nil {
		return fmt.Errorf("grant %d days to %s: %w", days, who(u), err)
	}
	applied, applyErr := op.applyNow(ctx, a)
	v := grantView{User: viewUser(u), Days: days, Subscription: viewSubscription(sub), Reconcile: applied}
	if delivery != nil {
		p := viewPeerOf(delivery.Peer, a.server.Name, u)
		v.NewDevice = &p
	}
	if op.json {
		if err := op.writeJSON(v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(op.out, "granted %d day(s) to %s: subscription %d %s until %s UTC, device limit %d\n",
			days, who(u), sub.ID, sub.Status, fmtTime(sub.ExpiresAt), sub.DeviceLimit)
		if v.NewDevice != nil {
			fmt.Fprintf(op.out, "issued %s (peer %d, %s); the user gets its config from the bot\n", v.NewDevice.Name, v.NewDevice.ID, v.NewDevice.IP)
		}
		op.printApplied(applied)
	}
	return notApplied(applyErr, "the grant")
}

func (op *operatorCmd) revoke(ctx context.Context, args []string) error {
	fs := op.flags("revoke")
	pos, err := op.parse(fs, usageRevoke, args, 1)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, op.settings, op.log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := findUser(ctx, a.svc, pos[0])
	if err != nil {
		return err
	}
	// Read the devices first, only to tell the operator what went.
	before, err := a.store.ListPeers(ctx, postgres.PeerFilter{UserID: u.ID})
	if err != nil {
		return err
	}
	if err := a.svc.Revoke(ctx, u); errors.Is(err, wgbot.ErrNoSubscription) {
		return wgbot.Errorf(wgbot.ENotFound, "no_subscription", "%s has no active subscription or device to revoke", who(u))
	} else if err != nil {
		return fmt.Errorf("revoke %s: %w", who(u), err)
	}
	applied, applyErr := op.applyNow(ctx, a)
	v := revokeView{User: viewUser(u), RevokedDevices: []peerView{}, Reconcile: applied}
	for _, p := range before {
		if p.Status != wgbot.PeerRevoked {
			p.Status = wgbot.PeerRevoked
			v.RevokedDevices = append(v.RevokedDevices, viewPeer(p))
		}
	}
	if op.json {
		if err := op.writeJSON(v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(op.out, "revoked %s: subscription ended, %d device(s) revoked\n", who(u), len(v.RevokedDevices))
		for _, p := range v.RevokedDevices {
			fmt.Fprintf(op.out, "  %s (peer %d, %s)\n", p.Name, p.ID, p.IP)
		}
		op.printApplied(applied)
	}
	return notApplied(applyErr, "the revocation")
}

// applyNow runs one reconcile in this process so a committed change
// reaches wg0.conf and the device even when no `wgbot serve` runs. It is
// bounded: the reconciler waits for the file lock at most WG_LOCK_TIMEOUT.
func (op *operatorCmd) applyNow(ctx context.Context, a *app) (*applyView, error) {
	ctx, cancel := context.WithTimeout(ctx, op.settings.WGLockTimeout+op.settings.WGReconcileWait)
	defer cancel()
	res, err := a.rec.Reconcile(ctx)
	// Reconciles in two processes are not ordered: ours may have applied a
	// snapshot older than the one a running serve applied a moment ago.
	// Waking serve makes it apply the newest one again.
	if nerr := a.store.NotifyServer(ctx, a.server.ID, res.Revision); nerr != nil {
		op.log.Warn("could not wake a running wgbot serve; its periodic resync will catch up", "err", nerr)
	}
	v := viewApply(a.settings, res, err)
	return &v, err
}

// notApplied turns a failed in-process reconcile after a committed change
// into an error that says what did happen.
func notApplied(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s is committed, but WireGuard was not updated: %w; a running `wgbot serve` retries on its own, or run `wgbot reconcile`", what, err)
}

func (op *operatorCmd) printApplied(v *applyView) {
	switch {
	case v.Error != "":
		fmt.Fprintf(op.out, "WireGuard: not updated: %s\n", v.Error)
	case v.Mode == config.ApplyNone:
		fmt.Fprintln(op.out, "WireGuard: WG_APPLY_MODE=none, nothing applied")
	default:
		fmt.Fprintf(op.out, "WireGuard: up to date (revision %d): %s\n", v.Revision, v.summary())
	}
}

// --- issue ---

func (op *operatorCmd) issue(ctx context.Context, args []string) error {
	fs := op.flags("issue")
	telegramID := fs.Int64("telegram-id", 0, "the user's Telegram id (registered if new)")
	days := fs.Int("days", 0, "days to add to the user's subscription (1 to 3650)")
	devices := fs.Int("devices", 1, "the least device limit the subscription keeps")
	out := fs.String("out", "", "write the client config to this new file (mode 0600) instead of printing it")
	if _, err := op.parse(fs, usageIssue, args, 0); err != nil {
		return err
	}
	switch {
	case *telegramID <= 0:
		return usageError{"--telegram-id: want the user's Telegram id (a positive number)\nusage: wgbot " + usageIssue}
	case *days < 1 || *days > 3650:
		return usageError{fmt.Sprintf("--days: want a whole number from 1 to 3650, got %d\nusage: wgbot %s", *days, usageIssue)}
	case *devices < 1:
		return usageError{fmt.Sprintf("--devices: want 1 or more, got %d\nusage: wgbot %s", *devices, usageIssue)}
	}
	// Claim the output file before issuing anything: a name that is taken
	// must not leave behind a device whose config nobody got.
	var file *os.File
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("refusing to overwrite %s: it exists; choose another --out or remove it first", *out)
		}
		if err != nil {
			return fmt.Errorf("create --out file: %w", err)
		}
		file = f
		defer func() {
			if file != nil { // not written: leave no empty or partial file
				file.Close()
				os.Remove(*out)
			}
		}()
	}

	a, err := openApp(ctx, op.settings, op.log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	u, err := a.svc.UserByTelegramID(ctx, *telegramID)
	created := false
	if errors.Is(err, wgbot.ErrUserNotFound) {
		// Only a new user is registered here: registering an existing one
		// would blank the name and username the bot saw.
		u, err = a.svc.Register(ctx, wgbot.User{TelegramID: *telegramID, Language: "en"}, 0)
		created = err == nil
	}
	if err != nil {
		return fmt.Errorf("find or register Telegram user %d: %w", *telegramID, err)
	}
	d, _, err := a.svc.IssueDevice(ctx, u, *days, *devices)
	if err != nil {
		return fmt.Errorf("issue a device to %s: %w", who(u), err)
	}
	applied, applyErr := op.applyNow(ctx, a)

	if file != nil {
		_, err := file.Write(d.Config)
		if err == nil {
			err = file.Sync()
		}
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s (device %s of %s is issued; its config can be shown again): %w", *out, d.Peer.Name, who(u), err)
		}
		file = nil // written: keep it
	}
	v := issueView{User: viewUser(u), NewUser: created, Subscription: viewSubscription(d.Subscription),
		Device: viewPeerOf(d.Peer, a.server.Name, u), Out: *out, Reconcile: applied}
	switch {
	case op.json:
		if *out == "" {
			v.Config = string(d.Config)
		}
		if err := op.writeJSON(v); err != nil {
			return err
		}
	case *out != "":
		fmt.Fprintf(op.out, "wrote %s (mode 0600): %s of %s, %s, subscription until %s UTC\n",
			*out, d.Peer.Name, who(u), d.Peer.IP, fmtTime(d.Subscription.ExpiresAt))
		op.printApplied(applied)
	default:
		qr, err := wireguard.QRCodeTerminal(d.Config)
		if err != nil {
			return err
		}
		// The config as the user imports it, its QR code for a phone's
		// camera, then what was done.
		op.out.Write(d.Config)
		fmt.Fprintf(op.out, "\n%s\n", qr)
		fmt.Fprintf(op.out, "issued %s of %s, %s, subscription until %s UTC\n",
			d.Peer.Name, who(u), d.Peer.IP, fmtTime(d.Subscription.ExpiresAt))
		op.printApplied(applied)
	}
	return notApplied(applyErr, "the device")
}

// --- output ---

func (op *operatorCmd) writeJSON(v any) error {
	enc := json.NewEncoder(op.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func at(username string) string {
	if username == "" {
		return "-"
	}
	return "@" + username
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// who names a user for messages: Telegram id and, if known, @username.
func who(u wgbot.User) string {
	if u.Username != "" {
		return fmt.Sprintf("Telegram user %d (@%s)", u.TelegramID, u.Username)
	}
	return fmt.Sprintf("Telegram user %d", u.TelegramID)
}

// The JSON shapes below are the scripts' interface: snake_case names,
// times in RFC 3339, amounts in minor units. The domain types stay free of
// presentation tags.

type userView struct {
	ID         int64     `json:"id"`
	TelegramID int64     `json:"telegram_id"`
	Username   string    `json:"username"`
	FirstName  string    `json:"first_name"`
	Language   string    `json:"language"`
	Banned     bool      `json:"banned"`
	BlockedBot bool      `json:"blocked_bot"`
	CreatedAt  time.Time `json:"created_at"`
}

func viewUser(u wgbot.User) userView {
	return userView{ID: u.ID, TelegramID: u.TelegramID, Username: u.Username, FirstName: u.FirstName, Language: u.Language,
		Banned: u.Banned, BlockedBot: u.BlockedBot, CreatedAt: u.CreatedAt}
}

type subscriptionView struct {
	ID          int64     `json:"id"`
	Plan        string    `json:"plan"`
	Trial       bool      `json:"trial"`
	Status      string    `json:"status"`
	DeviceLimit int       `json:"device_limit"`
	StartsAt    time.Time `json:"starts_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (s subscriptionView) label() string {
	if s.Trial {
		return s.Status + " (trial)"
	}
	return s.Status
}

func viewSubscription(s wgbot.Subscription) subscriptionView {
	return subscriptionView{ID: s.ID, Plan: s.Plan, Trial: s.IsTrial, Status: s.Status, DeviceLimit: s.DeviceLimit,
		StartsAt: s.StartsAt, ExpiresAt: s.ExpiresAt}
}

func viewSubscriptionPtr(s *wgbot.Subscription) *subscriptionView {
	if s == nil {
		return nil
	}
	v := viewSubscription(*s)
	return &v
}

type userRow struct {
	userView
	Subscription *subscriptionView `json:"subscription"` // null: never subscribed
	Devices      int               `json:"devices"`      // not revoked
}

type peerView struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Server     string    `json:"server"`
	TelegramID int64     `json:"telegram_id"`
	Username   string    `json:"username"`
	IP         string    `json:"ip"`
	IP6        string    `json:"ip6,omitempty"`
	PublicKey  string    `json:"public_key"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
}

func viewPeer(p postgres.PeerListing) peerView {
	v := peerView{ID: p.ID, Name: p.Name, Server: p.Server, TelegramID: p.TelegramID, Username: p.Username,
		IP: p.IP.String(), PublicKey: p.PublicKey, Status: p.Status, CreatedAt: p.CreatedAt}
	if p.IP6.IsValid() {
		v.IP6 = p.IP6.String()
	}
	return v
}

func viewPeerOf(p wgbot.Peer, server string, u wgbot.User) peerView {
	return viewPeer(postgres.PeerListing{Peer: p, Server: server, TelegramID: u.TelegramID, Username: u.Username})
}

type paymentView struct {
	ID                int64      `json:"id"`
	Provider          string     `json:"provider"`
	ProviderPaymentID string     `json:"provider_payment_id"`
	OrderID           int64      `json:"order_id,omitempty"`
	Amount            int64      `json:"amount"` // minor units
	Currency          string     `json:"currency"`
	Status            string     `json:"status"`
	Days              int        `json:"days"`
	Flagged           string     `json:"flagged,omitempty"`
	AppliedAt         time.Time  `json:"applied_at"`
	RefundedAt        *time.Time `json:"refunded_at,omitempty"`
}

func viewPayment(p postgres.PaymentRecord) paymentView {
	return paymentView{ID: p.ID, Provider: p.Provider, ProviderPaymentID: p.ProviderPaymentID, OrderID: p.OrderID,
		Amount: p.Amount, Currency: p.Currency, Status: p.Status, Days: p.Days, Flagged: p.Flagged,
		AppliedAt: p.AppliedAt, RefundedAt: p.RefundedAt}
}

type userDetail struct {
	User          userView           `json:"user"`
	Subscriptions []subscriptionView `json:"subscriptions"` // newest first
	Devices       []peerView         `json:"devices"`       // every status
	Payments      []paymentView      `json:"payments"`
}

// applyView is what the in-process reconcile did.
type applyView struct {
	Mode        string `json:"mode"`
	Revision    int64  `json:"revision"`
	FileChanged bool   `json:"file_changed"`
	Added       int    `json:"device_added"`
	Updated     int    `json:"device_updated"`
	Removed     int    `json:"device_removed"`
	Unchanged   int    `json:"device_unchanged"`
	Error       string `json:"error,omitempty"`
	file        string // the config file's name, for text
}

func viewApply(s config.Settings, res reconcile.Result, err error) applyView {
	v := applyView{Mode: s.WGApplyMode, file: filepath.Base(s.WGConfigPath), Revision: res.Revision, FileChanged: res.FileChanged,
		Added: res.Device.Added, Updated: res.Device.Updated, Removed: res.Device.Removed, Unchanged: res.Device.Unchanged}
	if err != nil {
		v.Error = err.Error()
	}
	return v
}

func (v applyView) summary() string {
	file := v.file + " unchanged"
	if v.FileChanged {
		file = v.file + " rewritten"
	}
	if v.Mode != config.ApplyDevice {
		return file + " (WG_APPLY_MODE=" + v.Mode + ": the device is left to your tooling)"
	}
	return fmt.Sprintf("%s; device: added %d, updated %d, removed %d, unchanged %d", file, v.Added, v.Updated, v.Removed, v.Unchanged)
}

type grantView struct {
	User         userView         `json:"user"`
	Days         int              `json:"days"`
	Subscription subscriptionView `json:"subscription"`
	NewDevice    *peerView        `json:"new_device"` // null: the user's devices were kept
	Reconcile    *applyView       `json:"reconcile"`
}

type revokeView struct {
	User           userView   `json:"user"`
	RevokedDevices []peerView `json:"revoked_devices"`
	Reconcile      *applyView `json:"reconcile"`
}

type issueView struct {
	User         userView         `json:"user"`
	NewUser      bool             `json:"new_user"` // registered by this command
	Subscription subscriptionView `json:"subscription"`
	Device       peerView         `json:"device"`
	Config       string           `json:"config,omitempty"` // the client .conf; omitted with --out
	Out          string           `json:"out,omitempty"`
	Reconcile    *applyView       `json:"reconcile"`
}
