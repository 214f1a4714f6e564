package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"wgbot"
	"wgbot/postgres"
)

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
	fmt.Fprintln(tw, head+"STATUS\tPUBLIC KEY\tCREATED (UTC)\tLAST HANDSHAKE (UTC)\tTRAFFIC THIS MONTH")
	for _, p := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s%s\t%s\t%s\t%s\t%s\n", p.ID, p.Server, p.TelegramID, at(p.Username), p.Name, p.IP, v6(p),
			p.Status, p.PublicKey, fmtTime(p.CreatedAt), p.Usage.handshakeText(), p.Usage.trafficText())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(op.out, "%d peer(s)\n", len(rows))
	return nil
}
