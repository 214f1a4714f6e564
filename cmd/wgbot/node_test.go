package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgtest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// The two-process layout of several hosts: an operator adds a server, a
// `wgbot node` on its host (wireguard-go in a namespace) runs it, and a
// `wgbot serve` in node mode issues configs there. A trial's config
// arrives once the node has put the peer on the device; the node's
// heartbeat shows in `servers list`, with no revision lag.
func TestNodeAppliesForServe(t *testing.T) {
	wgtest.RequireTools(t)
	dbURL := pgtest.URL(t)
	const token = "7000000006:AAH-node-bot-token-0123456789abcdef"
	tg := tgtest.New(token)
	defer tg.Close()
	env, serverKey := hostEnv(t, dbURL, token, tg.URL(), "node")
	env["NODE_SERVER"] = "ams-1"
	operator := func(args ...string) string { return wgbotOK(t, env, args...) }
	operator("servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "ams.example.com:51820", "--subnet", "10.64.0.0/16")
	if out, err := runWgbot(env, "servers", "add", "ams-2", "--location", "Amsterdam", "--endpoint", "x:1", "--subnet", "10.64.128.0/24").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "overlaps") {
		t.Errorf("an overlapping subnet was not refused: %v\n%s", err, out)
	}

	// The node connects as the least-privilege role of deploy/node-role.sql.
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), string(mustRead(t, "../../deploy/node-role.sql"))); err != nil {
		t.Fatalf("deploy/node-role.sql: %v", err)
	}
	nodeURL := strings.Replace(dbURL, "postgres@", "wgbot_node@", 1)
	nodeEnv := map[string]string{"DATABASE_URL": nodeURL, "NODE_KEY_FILE": filepath.Join(t.TempDir(), "node.key"), "LOG_FORMAT": "json",
		"WG_APPLY_MODE": "device", "WG_CONFIG_PATH": env["WG_CONFIG_PATH"], "NODE_SERVER": "ams-1", "NODE_HEARTBEAT": "500ms",
		"METRICS_ADDR": freeAddr(t)}
	wg, _ := deviceHost(t, nodeEnv, serverKey)
	stopNode, _, _ := startWgbotCommand(t, nodeEnv, "node")
	defer stopNode()
	stopServe, _, _ := startWgbotLogged(t, env)
	defer stopServe()

	u := tgtest.User{ID: 4242, FirstName: "N", LanguageCode: "en"}
	menus := trialMenus(t, tg, []tgtest.User{u})
	if _, err := tg.PressButton(u, menus[0].ID, "trial"); err != nil {
		t.Fatal(err)
	}
	waitDocuments(t, tg, []tgtest.User{u}, 20*time.Second)
	d, err := wg.Device(nodeEnv["WG_INTERFACE"])
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Peers) != 1 {
		t.Fatalf("the node's device has %d peers when the config arrived, want 1", len(d.Peers))
	}
	var conf string
	for _, m := range tg.Messages(u.ID) {
		if m.Document != nil {
			conf = string(m.Document.Data)
		}
	}
	if !strings.Contains(conf, "PublicKey = "+serverKey.PublicKey().String()) || !strings.Contains(conf, "Endpoint = ams.example.com:51820") {
		t.Errorf("the config does not name the node's key and the server's endpoint:\n%s", conf)
	}

	var list []serverView
	waitUntil(t, 10*time.Second, "the node's heartbeat with no lag", func() bool {
		if err := json.Unmarshal([]byte(operator("servers", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		return len(list) == 1 && list[0].State == "active" && list[0].Peers == 1 && list[0].Lag == 0 && list[0].NodeSeen != nil
	})
	_, metrics := fetch("http://" + nodeEnv["METRICS_ADDR"] + "/metrics")
	for _, want := range []string{`wgbot_server_peers{server="ams-1"} 1`, `wgbot_server_revision_lag{server="ams-1"} 0`, `wgbot_server_heartbeat_age_seconds{server="ams-1"}`,
		`wgbot_server_received_bytes_total{server="ams-1"}`} { // the node collects its device's traffic
		if !strings.Contains(metrics, want) {
			t.Errorf("the node's /metrics lacks %s", want)
		}
	}
	if code, body := fetch("http://" + nodeEnv["METRICS_ADDR"] + "/readyz"); code != 200 {
		t.Errorf("the node's /readyz: %d %s", code, body)
	}
}

// Only one process may long-poll a bot: a second serve in polling mode on
// the same database is refused with a clear error, and exits.
func TestSecondLongPollerRefused(t *testing.T) {
	dbURL := pgtest.URL(t)
	tg := tgtest.New(outageBotToken)
	defer tg.Close()
	env := serveEnv(t, dbURL, tg.URL(), nil)
	stop := startWgbot(t, env)
	defer stop()
	trialMenus(t, tg, []tgtest.User{{ID: 7, FirstName: "A", LanguageCode: "en"}}) // the first one polls
	second := maps.Clone(env)
	second["HTTP_ADDR"], second["METRICS_ADDR"] = freeAddr(t), freeAddr(t)
	out, err := runWgbot(second, "serve").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "only one process may long-poll") {
		t.Fatalf("a second long-poller was not refused: %v\n%s", err, tail(string(out), 10))
	}
}

// Two hosts, each a wireguard-go device with its own `wgbot node`, and one
// serve in node mode: new devices alternate between the least-loaded
// servers, each on its own host's device with its own endpoint; a drained
// server gets no new peers, nor does one whose node went silent, and with
// no server left a trial is refused plainly.
func TestNodesSpreadDrainAndDown(t *testing.T) {
	wgtest.RequireTools(t)
	dbURL := pgtest.URL(t)
	const token = "7000000007:AAH-spread-bot-token-0123456789abcdef"
	tg := tgtest.New(token)
	defer tg.Close()
	env, _ := hostEnv(t, dbURL, token, tg.URL(), "node")
	env["NODE_SERVER"], env["NODE_DOWN_AFTER"] = "ams-1", "3s"
	admin := func(args ...string) { wgbotOK(t, env, args...) }
	admin("migrate")
	admin("servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "ams.example.com:51820", "--subnet", "10.64.0.0/24", "--capacity", "10")
	admin("servers", "add", "fra-1", "--location", "Frankfurt", "--endpoint", "fra.example.com:51820", "--subnet", "10.65.0.0/24", "--capacity", "10")
	type host struct {
		env  map[string]string
		wg   *wgctrl.Client
		stop func()
	}
	hosts := map[string]*host{}
	for _, name := range []string{"ams-1", "fra-1"} {
		h := &host{env: nodeSettings(t, dbURL, filepath.Join(t.TempDir(), "wg0.conf"), name)}
		key, _ := wgtypes.GeneratePrivateKey()
		h.wg, _ = deviceHost(t, h.env, key)
		h.stop, _, _ = startWgbotCommand(t, h.env, "node")
		hosts[name] = h
	}
	defer hosts["fra-1"].stop()
	stopServe, _, _ := startWgbotLogged(t, env)
	defer stopServe()
	waitUntil(t, 10*time.Second, "both nodes' heartbeats", func() bool {
		var list []serverView
		out, _ := runWgbot(env, "servers", "list", "--json").Output()
		json.Unmarshal(out, &list)
		return len(list) == 2 && list[0].State == "active" && list[1].State == "active"
	})

	next := int64(1000)
	trial := func() string { // the endpoint of the config it got, or the text
		t.Helper()
		next++
		u := tgtest.User{ID: next, FirstName: "U", LanguageCode: "en"}
		menus := trialMenus(t, tg, []tgtest.User{u})
		n := len(tg.Messages(u.ID))
		if _, err := tg.PressButton(u, menus[0].ID, "trial"); err != nil {
			t.Fatal(err)
		}
		var got string
		defer func() {
			if t.Failed() {
				for _, m := range tg.Messages(u.ID) {
					t.Logf("user %d got: %q", u.ID, m.Text)
				}
			}
		}()
		picked := false
		waitUntil(t, 20*time.Second, "the trial's answer", func() bool {
			// With both locations open the bot asks where: "any".
			if m, ok := buttonMessage(tg, u.ID, "loc:t:any"); ok && !picked {
				if _, err := tg.PressButton(u, m.ID, "loc:t:any"); err != nil {
					t.Fatal(err)
				}
				picked = true
			}
			for _, m := range tg.Messages(u.ID)[n:] {
				if m.Document != nil {
					got = configEndpoint(string(m.Document.Data))
					return true
				}
				if strings.Contains(m.Text, "try again") {
					got = m.Text
					return true
				}
			}
			return false
		})
		return got
	}
	// In turn, each new device goes to the emptier server; a tie either way.
	for round := range 2 {
		got := map[string]bool{trial(): true, trial(): true}
		if !got["ams.example.com:51820"] || !got["fra.example.com:51820"] {
			t.Fatalf("round %d of two trials went to %v, want one on each server", round+1, got)
		}
	}
	for name, h := range hosts {
		d, err := h.wg.Device(h.env["WG_INTERFACE"])
		if err != nil || len(d.Peers) != 2 {
			t.Errorf("%s's device: %v peers, %v; want 2", name, len(d.Peers), err)
		}
	}
	admin("servers", "drain", "fra-1")
	for range 2 {
		if got := trial(); !strings.HasPrefix(got, "ams.example.com") {
			t.Fatalf("a trial with fra-1 drained went to %q", got)
		}
	}
	hosts["ams-1"].stop()
	time.Sleep(4 * time.Second) // past NODE_DOWN_AFTER
	if got := trial(); !strings.Contains(got, "servers are down or full") {
		t.Fatalf("a trial with ams-1 down and fra-1 drained got %q", got)
	}
	admin("servers", "enable", "fra-1")
	if got := trial(); !strings.HasPrefix(got, "fra.example.com") {
		t.Fatalf("a trial after enabling fra-1 went to %q", got)
	}

	// Restarted, the node converges on what changed while it was down (a
	// user revoked): no peer lost, none doubled.
	admin("revoke", "1005") // the fifth trial, on ams-1 (fra-1 was drained)
	ams := hosts["ams-1"]
	ams.stop, _, _ = startWgbotCommand(t, ams.env, "node")
	defer ams.stop()
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitUntil(t, 15*time.Second, "the restarted node's device to equal the database", func() bool {
		var want []string
		rows, _ := pool.Query(context.Background(), `SELECT p.public_key FROM peers p JOIN servers s ON s.id = p.server_id
			WHERE s.name = 'ams-1' AND p.status = 'active' ORDER BY 1`)
		want, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		d, err := ams.wg.Device(ams.env["WG_INTERFACE"])
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range d.Peers {
			got = append(got, p.PublicKey.String())
		}
		slices.Sort(got)
		return len(want) == 3 && slices.Equal(got, want)
	})
}

// A node cut off from PostgreSQL keeps its device as last applied (the
// tunnels keep working), and once the database is back it converges,
// including a revoke made during the cut.
func TestNodeCutFromDatabase(t *testing.T) {
	wgtest.RequireTools(t)
	dbURL := pgtest.URL(t)
	const token = "7000000008:AAH-cut-bot-token-0123456789abcdef"
	tg := tgtest.New(token)
	defer tg.Close()
	env, serverKey := hostEnv(t, dbURL, token, tg.URL(), "node")
	env["NODE_SERVER"] = "ams-1"
	admin := func(args ...string) { wgbotOK(t, env, args...) }
	admin("migrate")
	admin("servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "ams.example.com:51820", "--subnet", "10.64.0.0/24")
	proxy, proxiedURL := pgtest.NewProxy(t, dbURL)
	nodeEnv := cutNodeSettings(t, proxiedURL, env["WG_CONFIG_PATH"], "ams-1")
	wg, _ := deviceHost(t, nodeEnv, serverKey)
	stopNode, _, _ := startWgbotCommand(t, nodeEnv, "node")
	defer stopNode()
	stopServe, _, _ := startWgbotLogged(t, env)
	defer stopServe()

	users := []tgtest.User{{ID: 31, FirstName: "A", LanguageCode: "en"}, {ID: 32, FirstName: "B", LanguageCode: "en"}}
	menus := trialMenus(t, tg, users)
	for i, u := range users {
		tg.PressButton(u, menus[i].ID, "trial")
	}
	waitDocuments(t, tg, users, 20*time.Second)
	peers := func() int {
		d, err := wg.Device(nodeEnv["WG_INTERFACE"])
		if err != nil {
			t.Fatal(err)
		}
		return len(d.Peers)
	}
	if n := peers(); n != 2 {
		t.Fatalf("%d peers on the device, want 2", n)
	}

	proxy.Cut()
	admin("revoke", "31")
	time.Sleep(3 * time.Second) // past a resync interval: the node keeps retrying
	if n := peers(); n != 2 {
		t.Fatalf("during the cut the device has %d peers, want the 2 last applied", n)
	}
	proxy.Restore()
	waitUntil(t, 30*time.Second, "the node to apply the revoke made during the cut", func() bool { return peers() == 1 })
}

// Three hosts, each a network namespace with wireguard-go and its own
// `wgbot node`, and two serve processes (two bots on one database): 90
// users take trials, spread over the three servers; every config tunnels
// a ping through its own host, no address repeats within a server, and
// every address lies in its server's subnet.
func TestThreeHostsTunnel(t *testing.T) {
	wgtest.RequireTools(t)
	dbURL := pgtest.URL(t)
	tokens := []string{"7000000009:AAH-three-a-token-0123456789abcdef", "7000000010:AAH-three-b-token-0123456789abcdef"}
	var bots []*tgtest.Server
	var envs []map[string]string
	for _, token := range tokens {
		tg := tgtest.New(token)
		defer tg.Close()
		env, _ := hostEnv(t, dbURL, token, tg.URL(), "node")
		env["NODE_SERVER"] = "h1"
		bots, envs = append(bots, tg), append(envs, env)
	}
	admin := func(args ...string) { wgbotOK(t, envs[0], args...) }
	admin("migrate")
	type host struct {
		name, cliNS, cliIf string
		tunnel             string // the server's tunnel address
		wg                 *wgctrl.Client
		iface              string
	}
	hosts := map[string]host{} // by endpoint
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("h%d", i)
		endpoint := fmt.Sprintf("198.18.%d.1:51820", i)
		subnet := fmt.Sprintf("10.7%d.0.0/24", i)
		admin("servers", "add", name, "--location", "Loc"+name, "--endpoint", endpoint, "--subnet", subnet, "--capacity", "100")
		env := nodeSettings(t, dbURL, filepath.Join(t.TempDir(), "wg0.conf"), name)
		key, _ := wgtypes.GeneratePrivateKey()
		wgc, ns := deviceHost(t, env, key)
		tunnel := fmt.Sprintf("10.7%d.0.1", i)
		wgtest.Exec(t, ns, "ip", "address", "add", tunnel+"/24", "dev", env["WG_INTERFACE"])
		wgtest.Exec(t, ns, "ip", "link", "set", env["WG_INTERFACE"], "up")
		cliNS := wgtest.Netns(t, "cli")
		wgtest.Veth(t, ns, netip.MustParsePrefix(fmt.Sprintf("198.18.%d.1/30", i)), cliNS, netip.MustParsePrefix(fmt.Sprintf("198.18.%d.2/30", i)))
		cliIf := wgtest.UniqueName(t, "wgc")
		wgtest.StartWireGuardGo(t, cliNS, cliIf)
		stop, _, _ := startWgbotCommand(t, env, "node")
		defer stop()
		hosts[endpoint] = host{name: name, cliNS: cliNS, cliIf: cliIf, tunnel: tunnel, wg: wgc, iface: env["WG_INTERFACE"]}
	}
	for _, env := range envs {
		stop, _, _ := startWgbotLogged(t, env)
		defer stop()
	}
	waitUntil(t, 10*time.Second, "the three nodes' heartbeats", func() bool {
		var list []serverView
		out, _ := runWgbot(envs[0], "servers", "list", "--json").Output()
		json.Unmarshal(out, &list)
		up := 0
		for _, s := range list {
			if s.State == "active" {
				up++
			}
		}
		return up == 3
	})

	const n = 90
	users := make([][]tgtest.User, 2)
	for i := range n {
		users[i%2] = append(users[i%2], tgtest.User{ID: int64(5000 + i), FirstName: "U", LanguageCode: "en"})
	}
	for b, tg := range bots {
		menus := trialMenus(t, tg, users[b])
		for i, u := range users[b] {
			tg.PressButton(u, menus[i].ID, "trial")
		}
		// Three locations: each user is asked where, and takes "any".
		pressWhenThere(t, tg, users[b], "loc:t:any", 30*time.Second)
	}
	perHost := map[string]int{}
	for b, tg := range bots {
		waitDocuments(t, tg, users[b], time.Minute)
		for _, u := range users[b] {
			var conf string
			for _, m := range tg.Messages(u.ID) {
				if m.Document != nil {
					conf = string(m.Document.Data)
				}
			}
			h, ok := hosts[configEndpoint(conf)]
			if !ok {
				t.Fatalf("user %d's config names endpoint %q", u.ID, configEndpoint(conf))
			}
			perHost[h.name]++
			wgtest.Exec(t, h.cliNS, "ip", "address", "flush", "dev", h.cliIf)
			wgtest.QuickUp(t, h.cliNS, h.cliIf, conf)
			if out, err := wgtest.ExecErr(h.cliNS, "ping", "-c", "1", "-W", "3", h.tunnel); err != nil {
				t.Fatalf("user %d: no ping through %s: %v\n%s", u.ID, h.name, err, out)
			}
		}
	}
	t.Logf("%d trials per host: %v", n, perHost)
	if len(perHost) != 3 || perHost["h1"] < n/6 || perHost["h2"] < n/6 || perHost["h3"] < n/6 {
		t.Errorf("a burst of %d trials is not spread over the three hosts: %v", n, perHost)
	}
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var bad int
	if err := pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM (SELECT server_id, ip FROM peers WHERE status <> 'revoked' GROUP BY 1, 2 HAVING count(*) > 1) d) +
			(SELECT count(*) FROM peers p JOIN servers s ON s.id = p.server_id WHERE NOT p.ip << s.subnet)`).Scan(&bad); err != nil || bad != 0 {
		t.Errorf("%d duplicate or stray addresses (%v)", bad, err)
	}

	// A user moves their device to another location: the new config
	// tunnels through the other host, and once the user confirms, the old
	// peer is gone from the old host's device.
	tg, u := bots[0], users[0][0]
	var conf string
	for _, m := range tg.Messages(u.ID) {
		if m.Document != nil {
			conf = string(m.Document.Data)
		}
	}
	from := hosts[configEndpoint(conf)]
	var to host
	for _, h := range hosts {
		if h.name != from.name {
			to = h
		}
	}
	var oldPeer, toServer int64
	var oldKey string
	if err := pool.QueryRow(context.Background(), `SELECT p.id, p.public_key, (SELECT id FROM servers WHERE name = $2)
		FROM peers p JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1 AND p.status = 'active'`, u.ID, to.name).Scan(&oldPeer, &oldKey, &toServer); err != nil {
		t.Fatal(err)
	}
	tg.SendText(u, "/start")
	pressWhenThere(t, tg, []tgtest.User{u}, "sub", 10*time.Second)
	move := fmt.Sprintf("dev:mv:%d", oldPeer)
	pressWhenThere(t, tg, []tgtest.User{u}, move, 10*time.Second)
	before := docs(tg, u.ID)
	pressWhenThere(t, tg, []tgtest.User{u}, fmt.Sprintf("loc:m:%d:%d", oldPeer, toServer), 10*time.Second)
	waitUntil(t, 20*time.Second, "the moved device's config", func() bool { return docs(tg, u.ID) > before })
	for _, m := range tg.Messages(u.ID) {
		if m.Document != nil {
			conf = string(m.Document.Data)
		}
	}
	if got := configEndpoint(conf); hosts[got].name != to.name {
		t.Fatalf("moved config names %q, want %s's endpoint", got, to.name)
	}
	wgtest.Exec(t, to.cliNS, "ip", "address", "flush", "dev", to.cliIf)
	wgtest.QuickUp(t, to.cliNS, to.cliIf, conf)
	if out, err := wgtest.ExecErr(to.cliNS, "ping", "-c", "1", "-W", "3", to.tunnel); err != nil {
		t.Fatalf("no ping through %s after the move: %v\n%s", to.name, err, out)
	}
	onDevice := func(h host, key string) bool {
		d, err := h.wg.Device(h.iface)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(d.Peers, func(p wgtypes.Peer) bool { return p.PublicKey.String() == key })
	}
	if !onDevice(from, oldKey) {
		t.Fatalf("the old peer left %s before the user confirmed", from.name)
	}
	pressWhenThere(t, tg, []tgtest.User{u}, fmt.Sprintf("dev:rmok:%d", oldPeer), 10*time.Second)
	waitUntil(t, 10*time.Second, "the old peer to leave "+from.name, func() bool { return !onDevice(from, oldKey) })
}

// configEndpoint is the Endpoint of a client config's [Peer].
func configEndpoint(conf string) string {
	for _, l := range strings.Split(conf, "\n") {
		if e, ok := strings.CutPrefix(l, "Endpoint = "); ok {
			return strings.TrimSpace(e)
		}
	}
	return ""
}

// wgbotOK runs a wgbot command to its end and returns its output; it fails
// the test, quoting the output, if the command fails.
func wgbotOK(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, err := runWgbot(env, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("wgbot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buttonMessage is the newest of the chat's messages with a button whose
// data is data, and whether there is one.
func buttonMessage(tg *tgtest.Server, chatID int64, data string) (tgtest.Message, bool) {
	msgs := tg.Messages(chatID)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if b.CallbackData == data {
					return msgs[i], true
				}
			}
		}
	}
	return tgtest.Message{}, false
}

// pressWhenThere waits for a button with data in each user's chat and
// presses it.
func pressWhenThere(t *testing.T, tg *tgtest.Server, users []tgtest.User, data string, within time.Duration) {
	t.Helper()
	pressed := make([]bool, len(users))
	waitUntil(t, within, "buttons "+data, func() bool {
		all := true
		for i, u := range users {
			if pressed[i] {
				continue
			}
			m, ok := buttonMessage(tg, u.ID, data)
			if !ok {
				all = false
				continue
			}
			if _, err := tg.PressButton(u, m.ID, data); err != nil {
				t.Fatal(err)
			}
			pressed[i] = true
		}
		return all
	})
}

// nodeSettings is the settings of a `wgbot node` for server on its own device,
// heartbeating fast. Like a real node it has no master key, only its own
// key file.
func nodeSettings(t testing.TB, dbURL, configPath, server string) map[string]string {
	return map[string]string{"DATABASE_URL": dbURL, "NODE_KEY_FILE": filepath.Join(t.TempDir(), "node.key"), "LOG_FORMAT": "json",
		"WG_APPLY_MODE": "device", "WG_CONFIG_PATH": configPath, "NODE_SERVER": server,
		"NODE_HEARTBEAT": "300ms", "METRICS_ADDR": freeAddr(t)}
}

// cutNodeSettings is nodeSettings for a node whose database a test takes away: it
// resyncs often and gives up on a connection fast.
func cutNodeSettings(t testing.TB, dbURL, configPath, server string) map[string]string {
	env := nodeSettings(t, dbURL, configPath, server)
	env["WG_RESYNC_INTERVAL"], env["DB_CONNECT_TIMEOUT"] = "2s", "1s"
	return env
}
