package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"regexp"

	"wgbot/importer"
	"wgbot/postgres"
	"wgbot/service"
)

const usageImport = "import --from wg-quick|wg-easy|wireguard-ui PATH [--apply] [--days N | --no-expiry] [--claims FILE] [--bot USERNAME] [--server NAME] [--json]"

var botUsername = regexp.MustCompile(`^@?([A-Za-z0-9_]{4,32})$`)

// importView is the import's report for --json.
type importView struct {
	Source    string             `json:"source"`
	Server    string             `json:"server"`
	Applied   bool               `json:"applied"`
	Created   []importPeerView   `json:"created"`
	Unchanged []importPeerView   `json:"unchanged"`
	Skipped   []importer.Skipped `json:"skipped"`
	Problems  []string           `json:"problems"`
	Reconcile *applyView         `json:"reconcile,omitempty"`
}

type importPeerView struct {
	Ref        string `json:"ref"`
	Name       string `json:"name"`
	IP         string `json:"ip"`
	ID         int64  `json:"id,omitempty"`
	Expires    string `json:"expires"`
	Enabled    bool   `json:"enabled"`
	PrivateKey bool   `json:"private_key_known"`
	ClaimLink  string `json:"claim_link,omitempty"`
}

// importClients is `wgbot import`: a dry run unless --apply.
func (op *operatorCmd) importClients(ctx context.Context, args []string) error {
	fs := op.flags("import")
	from := fs.String("from", "", "the old tool: wg-quick, wg-easy or wireguard-ui")
	apply := fs.Bool("apply", false, "do it (in one transaction); without it, only say what would happen")
	days := fs.Int("days", 0, "clients the source gives no expiry get N days from now")
	noExpiry := fs.Bool("no-expiry", false, "clients the source gives no expiry never expire")
	claims := fs.String("claims", "", "write a CSV of name and claim link of every device created")
	bot := fs.String("bot", "", "the bot's @username, for the claim links t.me/<bot>?start=claim_<token>")
	serverName := fs.String("server", "", "the server the clients are on (default: this host's)")
	pos, err := op.parse(fs, usageImport, args, 1)
	if err != nil {
		return err
	}
	if *from == "" {
		return usageError{"--from: want wg-quick, wg-easy or wireguard-ui\nusage: wgbot " + usageImport}
	}
	var botName string
	if *bot != "" {
		m := botUsername.FindStringSubmatch(*bot)
		if m == nil {
			return usageError{fmt.Sprintf("--bot: want the bot's @username, got %q", *bot)}
		}
		botName = m[1]
	}
	if *apply && botName == "" {
		return usageError{"--apply: give --bot USERNAME, so each imported device's claim link can be written"}
	}
	list, err := importer.Read(*from, pos[0])
	if err != nil {
		return fmt.Errorf("read %s: %w", pos[0], err)
	}
	a, err := openApp(ctx, op.settings, op.log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	srv := a.server
	if *serverName != "" {
		if srv, err = a.store.ServerByName(ctx, *serverName); err != nil {
			return err
		}
	}
	res, err := a.svc.Import(ctx, list, service.ImportOptions{ServerID: srv.ID, Apply: *apply, Days: *days, NoExpiry: *noExpiry})
	refused := errors.Is(err, postgres.ErrImportRefused)
	if err != nil && !refused {
		return err
	}
	v := importView{Source: list.Source, Server: srv.Name, Applied: *apply && !refused,
		Skipped: res.Skipped, Problems: res.Problems}
	for i, p := range res.Created {
		pv := viewImportPeer(p)
		if v.Applied && botName != "" {
			pv.ClaimLink = "https://t.me/" + botName + "?start=" + service.ClaimPrefix + res.Claims[i]
		}
		v.Created = append(v.Created, pv)
	}
	for _, p := range res.Unchanged {
		v.Unchanged = append(v.Unchanged, viewImportPeer(p))
	}
	var applyErr error
	if v.Applied && len(v.Created) > 0 {
		if *claims != "" {
			if err := writeClaims(*claims, v.Created); err != nil {
				return fmt.Errorf("the import is committed, but the claims file was not written: %w", err)
			}
		}
		if srv.ID == a.server.ID {
			v.Reconcile, applyErr = op.applyNow(ctx, a)
		}
	}
	if op.json {
		if err := op.writeJSON(v); err != nil {
			return err
		}
	} else {
		op.printImport(v, *claims)
	}
	if refused {
		return fmt.Errorf("import refused: %d problem(s), nothing was changed", len(v.Problems))
	}
	return notApplied(applyErr, "the import")
}

func viewImportPeer(p postgres.ImportPeer) importPeerView {
	exp := fmtTime(p.ExpiresAt)
	if p.ExpiresAt.Equal(service.NoExpiry) {
		exp = "never"
	}
	return importPeerView{Ref: p.Ref, Name: p.Name, IP: p.IP.String(), ID: p.ID, Expires: exp, Enabled: p.Enabled,
		PrivateKey: len(p.Secrets.PrivateKeySealed) > 0}
}

func (op *operatorCmd) printImport(v importView, claims string) {
	verb := "would create"
	if v.Applied {
		verb = "created"
	}
	if len(v.Problems) > 0 {
		verb = "refused: would have created"
	}
	fmt.Fprintf(op.out, "import from %s into server %s: %s %d, unchanged %d, skipped %d\n",
		v.Source, v.Server, verb, len(v.Created), len(v.Unchanged), len(v.Skipped))
	if len(v.Created)+len(v.Problems) == 0 {
		fmt.Fprintln(op.out, "nothing to do: every client that can be imported is imported already")
	}
	if len(v.Created) > 0 {
		tw := newTable(op.out)
		fmt.Fprintln(tw, "REF\tNAME\tIP\tEXPIRES\tENABLED\tCONFIG\tCLAIM")
		for _, p := range v.Created {
			config := "can be shown"
			if !p.PrivateKey {
				config = "cannot be shown (no private key; the client's keeps working)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\t%s\n", p.Ref, p.Name, p.IP, p.Expires, p.Enabled, config, dash(p.ClaimLink))
		}
		tw.Flush()
	}
	for _, s := range v.Skipped {
		fmt.Fprintf(op.out, "skipped %s %q: %s\n", s.Ref, s.Name, s.Reason)
	}
	for _, p := range v.Problems {
		fmt.Fprintf(op.out, "problem: %s\n", p)
	}
	if v.Applied && claims != "" && len(v.Created) > 0 {
		fmt.Fprintf(op.out, "claim links written to %s\n", claims)
	}
	if v.Reconcile != nil {
		op.printApplied(v.Reconcile)
	}
	if !v.Applied && len(v.Problems) == 0 && len(v.Created) > 0 {
		fmt.Fprintln(op.out, "dry run: nothing was changed; run again with --apply to import")
	}
}

// writeClaims writes name,link rows; the links are credentials, so the
// file is the operator's alone.
func writeClaims(path string, peers []importPeerView) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"name", "link"}) //nolint:errcheck // reported by Flush
	for _, p := range peers {
		w.Write([]string{p.Name, p.ClaimLink}) //nolint:errcheck // reported by Flush
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
