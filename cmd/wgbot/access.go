package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"wgbot"
	"wgbot/postgres"
	"wgbot/reconcile"
	"wgbot/wireguard"
)

// The commands that change access: grant, revoke and issue. Each
// changes the database through the service, then applies it here
// (applyNow).

// openUser opens the app for a change to the user ref names; the caller
// closes it. On an error nothing is left open.
func (op *operatorCmd) openUser(ctx context.Context, ref string) (*app, wgbot.User, error) {
	a, err := openApp(ctx, op.settings, op.log, false)
	if err != nil {
		return nil, wgbot.User{}, err
	}
	u, err := findUser(ctx, a.svc, ref)
	if err != nil {
		a.Close()
		return nil, wgbot.User{}, err
	}
	return a, u, nil
}

// applyNow runs one reconcile in this process so a committed change
// reaches wg0.conf and the device even when no `wgbot serve` runs. It is
// bounded: the reconciler waits for the file lock at most WG_LOCK_TIMEOUT.
func (op *operatorCmd) applyNow(ctx context.Context, a *app) (*applyView, error) {
	if op.settings.WGApplyMode == reconcile.ModeNode {
		// The servers' nodes apply it: the commit's NOTIFY woke them.
		return &applyView{Mode: reconcile.ModeNode}, nil
	}
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
	case v.Mode == reconcile.ModeNone:
		fmt.Fprintln(op.out, "WireGuard: WG_APPLY_MODE=none, nothing applied")
	default:
		fmt.Fprintf(op.out, "WireGuard: up to date (revision %d): %s\n", v.Revision, v.summary())
	}
}

func (op *operatorCmd) grant(ctx context.Context, args []string) error {
	fs := op.flags("grant")
	devices := fs.Int("devices", 1, "the least device limit the subscription keeps")
	pos, err := op.parse(fs, usageGrant, args, 2)
	if err != nil {
		return err
	}
	days, err := strconv.Atoi(pos[1])
	if err == nil {
		_, err = wgbot.GrantPlan(days, 1)
	}
	if err != nil {
		return usageError{fmt.Sprintf("days: want a whole number from 1 to %d, got %q\nusage: wgbot %s", wgbot.MaxGrantDays, pos[1], usageGrant)}
	}
	if *devices < 1 {
		return usageError{fmt.Sprintf("--devices: want 1 or more, got %d", *devices)}
	}
	a, u, err := op.openUser(ctx, pos[0])
	if err != nil {
		return err
	}
	defer a.Close()
	sub, delivery, err := a.svc.Grant(asOperator(ctx, "grant", u.TelegramID, map[string]any{"days": days, "devices": *devices}), u, days, *devices)
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

func (op *operatorCmd) issue(ctx context.Context, args []string) error {
	fs := op.flags("issue")
	telegramID := fs.Int64("telegram-id", 0, "the user's Telegram id (registered if new)")
	days := fs.Int("days", 0, fmt.Sprintf("days to add to the user's subscription (1 to %d)", wgbot.MaxGrantDays))
	devices := fs.Int("devices", 1, "the least device limit the subscription keeps")
	out := fs.String("out", "", "write the client config to this new file (mode 0600) instead of printing it")
	if _, err := op.parse(fs, usageIssue, args, 0); err != nil {
		return err
	}
	_, daysErr := wgbot.GrantPlan(*days, 1)
	switch {
	case *telegramID <= 0:
		return usageError{"--telegram-id: want the user's Telegram id (a positive number)\nusage: wgbot " + usageIssue}
	case daysErr != nil:
		return usageError{fmt.Sprintf("--days: want a whole number from 1 to %d, got %d\nusage: wgbot %s", wgbot.MaxGrantDays, *days, usageIssue)}
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
		u, err = a.svc.Register(ctx, wgbot.User{TelegramID: *telegramID, Language: "en"}, "")
		created = err == nil
	}
	if err != nil {
		return fmt.Errorf("find or register Telegram user %d: %w", *telegramID, err)
	}
	d, _, err := a.svc.IssueDevice(asOperator(ctx, "issue", u.TelegramID, map[string]any{"days": *days, "devices": *devices}), u, *days, *devices)
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

func (op *operatorCmd) revoke(ctx context.Context, args []string) error {
	fs := op.flags("revoke")
	pos, err := op.parse(fs, usageRevoke, args, 1)
	if err != nil {
		return err
	}
	a, u, err := op.openUser(ctx, pos[0])
	if err != nil {
		return err
	}
	defer a.Close()
	// Read the devices first, only to tell the operator what went.
	before, err := a.store.ListPeers(ctx, postgres.PeerFilter{UserID: u.ID})
	if err != nil {
		return err
	}
	if err := a.svc.Revoke(asOperator(ctx, "revoke", u.TelegramID, nil), u); errors.Is(err, wgbot.ErrNoSubscription) {
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

// asOperator marks ctx as the operator's command (source cli, admin 0:
// the shell's user is not a Telegram id): the store records the change
// it makes in that change's own transaction (wgbot.WithAudit). after is
// what the command adds to the state the store reads.
func asOperator(ctx context.Context, action string, target int64, after map[string]any) context.Context {
	return wgbot.WithAudit(ctx, wgbot.AuditEntry{Source: wgbot.AuditCLI, Action: action, TargetID: target, After: after})
}
