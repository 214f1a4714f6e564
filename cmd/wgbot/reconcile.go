package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/postgres"
	"wgbot/reconcile"
	"wgbot/wireguard/wgconf"
)

// reconcile shows what differs between the database, wg0.conf and the
// device, and repairs it unless --dry-run.
func (op *operatorCmd) reconcile(ctx context.Context, args []string) error {
	fs := op.flags("reconcile")
	dryRun := fs.Bool("dry-run", false, "show what differs and change nothing")
	if _, err := op.parse(fs, usageReconcile, args, 0); err != nil {
		return err
	}
	a, err := openApp(ctx, op.settings, op.log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	plan, err := planReconcile(ctx, a)
	if err != nil {
		return fmt.Errorf("compare server %s with the database: %w", a.server.Name, err)
	}
	v := reconcileView{DryRun: *dryRun, Plan: plan}
	var applyErr error
	if !*dryRun {
		v.Result, applyErr = op.applyNow(ctx, a)
	}
	if op.json {
		if err := op.writeJSON(v); err != nil {
			return err
		}
	} else {
		op.printPlan(plan)
		if *dryRun {
			fmt.Fprintln(op.out, "dry run: nothing changed")
		} else {
			op.printApplied(v.Result)
		}
	}
	if applyErr != nil {
		return fmt.Errorf("reconcile server %s: %w", a.server.Name, applyErr)
	}
	return nil
}

// planChange is one difference between the database and wg0.conf or the
// live device, as the reconciler would resolve it.
type planChange struct {
	Target     string   `json:"target"` // "file" (wg0.conf) or "device"
	Action     string   `json:"action"` // "add", "update" or "remove"
	Kind       string   `json:"kind"`   // "wgbot", "hand-made" (from wg0.conf) or "stray" (known to neither)
	PeerID     int64    `json:"peer_id,omitempty"`
	PublicKey  string   `json:"public_key"`
	AllowedIPs []string `json:"allowed_ips"`
	Detail     string   `json:"detail,omitempty"`
}

type reconcilePlan struct {
	Server        string       `json:"server"`
	Interface     string       `json:"interface"`
	Mode          string       `json:"mode"`
	Revision      int64        `json:"revision"`
	Peers         int          `json:"peers"` // active in the database
	ConfigPath    string       `json:"config_path"`
	FileRewrite   bool         `json:"file_rewrite"`   // wg0.conf's bytes would change
	DeviceChecked bool         `json:"device_checked"` // false unless WG_APPLY_MODE=device
	Changes       []planChange `json:"changes"`
	Warnings      []string     `json:"warnings,omitempty"`
}

type reconcileView struct {
	DryRun bool          `json:"dry_run"`
	Plan   reconcilePlan `json:"plan"`
	Result *applyView    `json:"result"` // null on a dry run
}

// planReconcile describes what a reconcile would change, by the
// reconciler's own rules (reconcile.Plan), without changing anything.
func planReconcile(ctx context.Context, a *app) (reconcilePlan, error) {
	s := a.settings
	p, err := a.rec.Plan(ctx)
	if err != nil {
		return reconcilePlan{}, err
	}
	plan := reconcilePlan{Server: a.server.Name, Interface: s.WGInterface, Mode: s.WGApplyMode, Revision: p.Revision,
		Peers: len(p.Managed), ConfigPath: s.WGConfigPath, FileRewrite: p.FileRewrite, Changes: []planChange{}, Warnings: p.Warnings}
	if s.WGApplyMode == reconcile.ModeNone {
		plan.Warnings = append(plan.Warnings, "WG_APPLY_MODE=none: wgbot changes neither wg0.conf nor the device, so a reconcile applies nothing")
		return plan, nil
	}
	plan.Changes = append(plan.Changes, fileChanges(p.File.ManagedPeers(), p.Managed)...)
	if p.DeviceDiff == nil {
		return plan, nil
	}
	plan.DeviceChecked = true
	// Who is who among the peers the device would lose: every peer this
	// server ever had, so a revoked one is told from a stranger.
	known, err := a.store.ListPeers(ctx, postgres.PeerFilter{Server: a.server.Name})
	if err != nil {
		return plan, err
	}
	dbPeers := map[string]postgres.PeerListing{}
	for _, p := range known {
		dbPeers[p.PublicKey] = p
	}
	handKeys := map[string]bool{}
	for _, h := range p.HandMade {
		if k, err := wgtypes.ParseKey(h.PublicKey); err == nil {
			handKeys[k.String()] = true
		}
	}
	onDevice := map[wgtypes.Key]wgtypes.Peer{}
	for _, p := range p.DevicePeers {
		onDevice[p.PublicKey] = p
	}
	describe := func(action string, pc wgtypes.PeerConfig, allowed []net.IPNet) planChange {
		c := planChange{Target: "device", Action: action, PublicKey: pc.PublicKey.String(), AllowedIPs: ipNets(allowed)}
		switch db, inDB := dbPeers[c.PublicKey]; {
		case handKeys[c.PublicKey]:
			c.Kind = "hand-made"
		case inDB:
			c.Kind, c.PeerID = "wgbot", db.ID
			if action == "remove" {
				c.Detail = "the peer is " + db.Status + " in the database"
			}
		default:
			c.Kind, c.Detail = "stray", "in neither the database nor "+s.WGConfigPath
		}
		return c
	}
	for _, pc := range p.DeviceDiff.Add {
		plan.Changes = append(plan.Changes, describe("add", pc, pc.AllowedIPs))
	}
	for _, pc := range p.DeviceDiff.Update {
		allowed := pc.AllowedIPs
		if !pc.ReplaceAllowedIPs {
			allowed = onDevice[pc.PublicKey].AllowedIPs
		}
		c := describe("update", pc, allowed)
		c.Detail = deviceUpdateDetail(pc)
		plan.Changes = append(plan.Changes, c)
	}
	for _, pc := range p.DeviceDiff.Remove {
		plan.Changes = append(plan.Changes, describe("remove", pc, onDevice[pc.PublicKey].AllowedIPs))
	}
	return plan, nil
}

// fileChanges compares wg0.conf's managed peers with the wanted ones by
// wgbot's peer id, the key the reconciler replaces them by.
func fileChanges(have, want []wgconf.Peer) []planChange {
	var out []planChange
	current := map[string]wgconf.Peer{}
	for _, p := range have {
		current[p.ID] = p
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.ID] = true
		c := planChange{Target: "file", Kind: "wgbot", PublicKey: w.PublicKey, AllowedIPs: prefixes(w.AllowedIPs)}
		c.PeerID, _ = strconv.ParseInt(w.ID, 10, 64)
		h, ok := current[w.ID]
		switch {
		case !ok:
			c.Action = "add"
		case filePeerDiff(h, w) != "":
			c.Action, c.Detail = "update", filePeerDiff(h, w)
		default:
			continue
		}
		out = append(out, c)
	}
	for _, h := range have {
		if !wanted[h.ID] {
			c := planChange{Target: "file", Action: "remove", Kind: "wgbot", PublicKey: h.PublicKey, AllowedIPs: prefixes(h.AllowedIPs),
				Detail: "not an active peer in the database"}
			c.PeerID, _ = strconv.ParseInt(h.ID, 10, 64)
			out = append(out, c)
		}
	}
	return out
}

// filePeerDiff names what differs between a managed peer in the file and
// the one the database wants; "" when they are equal.
func filePeerDiff(have, want wgconf.Peer) string {
	var d []string
	if have.PublicKey != want.PublicKey {
		d = append(d, "public key")
	}
	if have.PresharedKey != want.PresharedKey {
		d = append(d, "preshared key")
	}
	if !slices.Equal(have.AllowedIPs, want.AllowedIPs) {
		d = append(d, "allowed IPs")
	}
	if have.Endpoint != want.Endpoint {
		d = append(d, "endpoint")
	}
	if have.PersistentKeepalive != want.PersistentKeepalive {
		d = append(d, "keepalive")
	}
	return strings.Join(d, ", ")
}

func deviceUpdateDetail(pc wgtypes.PeerConfig) string {
	var d []string
	if pc.ReplaceAllowedIPs {
		d = append(d, "allowed IPs")
	}
	if pc.PresharedKey != nil {
		d = append(d, "preshared key")
	}
	if pc.PersistentKeepaliveInterval != nil {
		d = append(d, "keepalive")
	}
	if pc.Endpoint != nil {
		d = append(d, "endpoint")
	}
	return strings.Join(d, ", ")
}

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func ipNets(ns []net.IPNet) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.String())
	}
	return out
}

func (op *operatorCmd) printPlan(p reconcilePlan) {
	fmt.Fprintf(op.out, "server %s (interface %s), revision %d, %d active peer(s) in the database, WG_APPLY_MODE=%s\n",
		p.Server, p.Interface, p.Revision, p.Peers, p.Mode)
	for _, w := range p.Warnings {
		fmt.Fprintln(op.out, "warning:", w)
	}
	fileChanged := false
	for _, c := range p.Changes {
		fileChanged = fileChanged || c.Target == "file"
	}
	if len(p.Changes) == 0 && !p.FileRewrite {
		what := p.ConfigPath + " matches"
		if p.DeviceChecked {
			what = p.ConfigPath + " and the device match"
		}
		fmt.Fprintf(op.out, "in sync: %s the database\n", what)
		return
	}
	if p.FileRewrite && !fileChanged {
		fmt.Fprintf(op.out, "%s: same peers, but its managed block would be rewritten in wgbot's order and format\n", p.ConfigPath)
	}
	if len(p.Changes) == 0 {
		return
	}
	tw := newTable(op.out)
	fmt.Fprintln(tw, "TARGET\tACTION\tPEER\tALLOWED IPS\tPUBLIC KEY\tNOTE")
	for _, c := range p.Changes {
		target := c.Target
		if target == "file" {
			target = p.ConfigPath
		} else {
			target = "device " + p.Interface
		}
		peer := c.Kind
		if c.PeerID != 0 {
			peer = fmt.Sprintf("%s %d", c.Kind, c.PeerID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", target, c.Action, peer, dash(strings.Join(c.AllowedIPs, ", ")), c.PublicKey, dash(c.Detail))
	}
	tw.Flush()
}
