package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"wgbot/postgres"
)

const usageServers = "servers add NAME --location LABEL --endpoint HOST:PORT --subnet CIDR [--subnet6 CIDR] [--capacity N] [--dns LIST] [--mtu N]" +
	" | servers list | servers drain|enable|remove NAME [--json] | servers rekey NAME [--wait DURATION] [--json]"

// servers runs `wgbot servers`: the WireGuard hosts a `wgbot node` runs.
func (op *operatorCmd) servers(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"servers: want add, list, drain, enable, remove or rekey\nusage: wgbot " + usageServers}
	}
	sub, args := args[0], args[1:]
	fs := op.flags("servers " + sub)
	var n postgres.NewServer
	var subnet, subnet6, dns string
	var wait time.Duration
	npos := 1
	switch sub {
	case "add":
		fs.StringVar(&n.Location, "location", "", "the location users pick, e.g. Amsterdam")
		fs.StringVar(&n.Endpoint, "endpoint", "", "HOST:PORT clients connect to")
		fs.StringVar(&subnet, "subnet", "", "the tunnel subnet (IPv4 CIDR), disjoint from every other server's")
		fs.StringVar(&subnet6, "subnet6", "", "an optional IPv6 tunnel subnet")
		fs.IntVar(&n.Capacity, "capacity", 0, "most active peers it takes (0: no limit)")
		fs.StringVar(&dns, "dns", "", "DNS servers for its clients, comma-separated")
		fs.IntVar(&n.MTU, "mtu", 1420, "MTU for its clients")
	case "list":
		npos = 0
	case "drain", "enable", "remove":
	case "rekey":
		fs.DurationVar(&wait, "wait", 2*time.Minute, "how long to wait for the node to register its new key")
	case "-h", "--help", "-help":
		fmt.Fprintf(op.out, "usage: wgbot %s\n", usageServers)
		return nil
	default:
		return usageError{fmt.Sprintf("servers %s: want add, list, drain, enable, remove or rekey\nusage: wgbot %s", sub, usageServers)}
	}
	pos, err := op.parse(fs, usageServers, args, npos)
	if err != nil {
		return err
	}
	if sub == "add" {
		if err := parseNewServer(&n, pos[0], subnet, subnet6, dns); err != nil {
			return err
		}
	}
	if sub == "rekey" {
		return op.rekeyServer(ctx, pos[0], wait)
	}
	store, closeDB, err := op.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	switch sub {
	case "add":
		srv, err := store.AddServer(asOperator(ctx, "server_add", 0, map[string]any{"location": n.Location,
			"endpoint": n.Endpoint, "subnet": n.Subnet.String(), "capacity": n.Capacity}), n)
		if err != nil {
			return err
		}
		if op.json {
			return op.writeJSON(op.viewServer(postgres.ServerInfo{Server: srv, Location: n.Location, Capacity: n.Capacity, State: postgres.ServerActive}))
		}
		fmt.Fprintf(op.out, "added server %s (%s, %s): start `wgbot node --server %s` on its host\n", srv.Name, n.Location, srv.Subnet, srv.Name)
		return nil
	case "list":
		return op.listServers(ctx, store)
	case "drain":
		err = store.SetServerState(asOperator(ctx, "drain", 0, nil), pos[0], postgres.ServerDraining)
	case "enable":
		err = store.SetServerState(asOperator(ctx, "enable", 0, nil), pos[0], postgres.ServerActive)
	case "remove":
		err = store.RemoveServer(asOperator(ctx, "server_remove", 0, nil), pos[0])
	}
	if err != nil {
		return err
	}
	if op.json {
		return op.writeJSON(map[string]string{"server": pos[0], "done": sub})
	}
	fmt.Fprintf(op.out, "server %s: %s done\n", pos[0], sub)
	return nil
}

func parseNewServer(n *postgres.NewServer, name, subnet, subnet6, dns string) error {
	var problems []string
	n.Name = name
	if n.Location == "" {
		problems = append(problems, "--location: missing")
	}
	if n.Endpoint == "" {
		problems = append(problems, "--endpoint: missing")
	}
	var err error
	if n.Subnet, err = netip.ParsePrefix(subnet); err != nil || !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 30 {
		problems = append(problems, fmt.Sprintf("--subnet %q: want an IPv4 CIDR of /30 or larger, like 10.8.0.0/22", subnet))
	}
	if subnet6 != "" {
		if n.Subnet6, err = netip.ParsePrefix(subnet6); err != nil || !n.Subnet6.Addr().Is6() {
			problems = append(problems, fmt.Sprintf("--subnet6 %q: want an IPv6 CIDR like fd00:8::/64", subnet6))
		}
	}
	if n.Capacity < 0 {
		problems = append(problems, "--capacity: must not be negative")
	}
	for _, d := range strings.Split(dns, ",") {
		if d = strings.TrimSpace(d); d != "" {
			n.DNS = append(n.DNS, d)
		}
	}
	if len(problems) > 0 {
		return usageError{"servers add: " + strings.Join(problems, "; ") + "\nusage: wgbot " + usageServers}
	}
	return nil
}

type serverView struct {
	Name       string     `json:"name"`
	Location   string     `json:"location"`
	State      string     `json:"state"` // active, draining, or down when its node is silent
	Endpoint   string     `json:"endpoint"`
	Subnet     string     `json:"subnet"`
	Peers      int        `json:"peers"`
	Capacity   int        `json:"capacity"` // 0: no limit
	Revision   int64      `json:"revision"`
	NodeSeen   *time.Time `json:"node_seen_at"`
	Lag        int64      `json:"revision_lag"` // revisions the node has not applied yet
	Handshakes int        `json:"recent_handshakes"`
}

func (op *operatorCmd) viewServer(s postgres.ServerInfo) serverView {
	v := serverView{Name: s.Name, Location: s.Location, State: s.State, Endpoint: s.Endpoint, Subnet: s.Subnet.String(),
		Peers: s.Peers, Capacity: s.Capacity, Revision: s.Revision, Lag: s.Revision}
	if s.Node != nil {
		v.NodeSeen, v.Lag, v.Handshakes = &s.Node.SeenAt, s.Revision-s.Node.Revision, s.Node.Handshakes
	}
	if s.Node == nil || time.Since(s.Node.SeenAt) > op.settings.NodeDownAfter {
		v.State = "down"
	}
	return v
}

// listServers shows every server, unhealthy ones first.
func (op *operatorCmd) listServers(ctx context.Context, store *postgres.Store) error {
	list, err := store.Servers(ctx)
	if err != nil {
		return err
	}
	var down, up []serverView
	for _, s := range list {
		if v := op.viewServer(s); v.State == "down" {
			down = append(down, v)
		} else {
			up = append(up, v)
		}
	}
	rows := append(down, up...)
	if op.json {
		return op.writeJSON(rows)
	}
	tw := newTable(op.out)
	fmt.Fprintln(tw, "NAME\tLOCATION\tSTATE\tPEERS/CAPACITY\tHEARTBEAT\tLAG\tENDPOINT\tSUBNET")
	for _, v := range rows {
		capacity, seen := "∞", "never"
		if v.Capacity > 0 {
			capacity = fmt.Sprint(v.Capacity)
		}
		if v.NodeSeen != nil {
			seen = time.Since(*v.NodeSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%s\t%s\t%d\t%s\t%s\n", v.Name, dash(v.Location), v.State, v.Peers, capacity, seen, v.Lag, v.Endpoint, v.Subnet)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(op.out, "%d server(s)\n", len(rows))
	return nil
}

// rekeyServer rotates the node key of server name: the node makes a new
// key pair on its next heartbeat and registers it, then this command
// (with the master key, as serve has) re-seals the server's preshared
// keys to it. Tunnels stay up: the node never touches its device for it.
func (op *operatorCmd) rekeyServer(ctx context.Context, name string, wait time.Duration) error {
	a, err := openApp(ctx, op.settings, op.log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	if !op.json {
		fmt.Fprintf(op.out, "asked the node of %s for a new key; waiting up to %s for it to register one\n", name, wait)
	}
	key, n, err := a.svc.RotateNodeKey(ctx, name, wait)
	if err != nil {
		return err
	}
	if op.json {
		return op.writeJSON(map[string]any{"server": name, "node_key": key, "resealed": n})
	}
	fmt.Fprintf(op.out, "server %s: node key %s registered; re-sealed %d preshared keys (a serve process may have sealed the rest): "+
		"every peer is sealed to the new key, and the old key opens none\n", name, key, n)
	return nil
}
