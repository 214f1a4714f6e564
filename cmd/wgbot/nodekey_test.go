package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot"
	"wgbot/postgres/pgtest"
	"wgbot/secret"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgtest"
)

// lastConfig is the newest config document in the user's chat.
func lastConfig(tg *tgtest.Server, userID int64) string {
	var conf string
	for _, m := range tg.Messages(userID) {
		if m.Document != nil {
			conf = string(m.Document.Data)
		}
	}
	return conf
}

// nodeSealedRows is every peer's preshared key as sealed to a node.
func nodeSealedRows(t testing.TB, pool *pgxpool.Pool) []wgbot.PeerSecrets {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT public_key, coalesce(psk_node_sealed, ''), coalesce(psk_node_key, '') FROM peers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []wgbot.PeerSecrets
	for rows.Next() {
		var s wgbot.PeerSecrets
		if err := rows.Scan(&s.PublicKey, &s.NodeSealed, &s.NodeKey); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// A `wgbot node` with no master key, on the least-privilege role, makes
// its own key pair (0600) on first start and registers it; the trial it
// applies has the issued preshared key on the device and tunnels a ping.
// `servers rekey` rotates the node's key while the tunnel keeps working
// (the device never loses a peer and pings keep going through): the
// re-sealed keys work (a trial issued afterwards tunnels, and the node
// restarted on the new key converges), and the old node key opens none
// of the database's sealed preshared keys.
func TestNodeKeyRotation(t *testing.T) {
	wgtest.RequireTools(t)
	dbURL := pgtest.URL(t)
	const token = "7000000012:AAH-nodekey-token-0123456789abcdef"
	tg := tgtest.New(token)
	defer tg.Close()
	env, serverKey := hostEnv(t, dbURL, token, tg.URL(), "node")
	env["NODE_SERVER"] = "ams-1"
	admin := func(args ...string) string { return wgbotOK(t, env, args...) }
	admin("migrate")
	admin("servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "198.18.9.1:51820", "--subnet", "10.79.0.0/24")
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), string(mustRead(t, "../../deploy/node-role.sql"))); err != nil {
		t.Fatalf("deploy/node-role.sql: %v", err)
	}
	nodeEnv := nodeSettings(t, strings.Replace(dbURL, "postgres@", "wgbot_node@", 1), env["WG_CONFIG_PATH"], "ams-1")
	if _, ok := nodeEnv["MASTER_KEY"]; ok {
		t.Fatal("the node's settings hold the master key")
	}
	keyFile := nodeEnv["NODE_KEY_FILE"]
	wg, ns := deviceHost(t, nodeEnv, serverKey)
	iface := nodeEnv["WG_INTERFACE"]
	wgtest.Exec(t, ns, "ip", "address", "add", "10.79.0.1/24", "dev", iface)
	wgtest.Exec(t, ns, "ip", "link", "set", iface, "up")
	cliNS := wgtest.Netns(t, "cli")
	wgtest.Veth(t, ns, netip.MustParsePrefix("198.18.9.1/30"), cliNS, netip.MustParsePrefix("198.18.9.2/30"))
	cliIf := wgtest.UniqueName(t, "wgc")
	wgtest.StartWireGuardGo(t, cliNS, cliIf)
	ping := func() error {
		_, err := wgtest.ExecErr(cliNS, "ping", "-c", "1", "-W", "3", "10.79.0.1")
		return err
	}

	stopNode, _, _ := startWgbotCommand(t, nodeEnv, "node")
	stopServe, _, _ := startWgbotLogged(t, env)
	defer stopServe()
	nodeKeyOnRow := func() (key, sealed string) {
		if err := pool.QueryRow(context.Background(), `SELECT node_key, node_sealed_key FROM servers WHERE name = 'ams-1'`).Scan(&key, &sealed); err != nil {
			t.Fatal(err)
		}
		return key, sealed
	}
	waitUntil(t, 10*time.Second, "the node to register its key", func() bool { k, _ := nodeKeyOnRow(); return k != "" })
	info, err := os.Stat(keyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("node key file: %v %v", info, err)
	}
	oldKey, _, err := secret.LoadOrCreateNodeKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := nodeKeyOnRow(); k != oldKey.PublicKey() {
		t.Fatalf("the row names node key %s, the node's file holds %s", k, oldKey.PublicKey())
	}

	trial := func(u tgtest.User) string {
		t.Helper()
		menus := trialMenus(t, tg, []tgtest.User{u})
		if _, err := tg.PressButton(u, menus[0].ID, "trial"); err != nil {
			t.Fatal(err)
		}
		waitDocuments(t, tg, []tgtest.User{u}, 20*time.Second)
		conf := lastConfig(tg, u.ID)
		wgtest.Exec(t, cliNS, "ip", "address", "flush", "dev", cliIf)
		wgtest.QuickUp(t, cliNS, cliIf, conf)
		if err := ping(); err != nil {
			t.Fatalf("user %d: no ping through the node: %v", u.ID, err)
		}
		return conf
	}
	first := trial(tgtest.User{ID: 6101, FirstName: "A", LanguageCode: "en"})
	d, err := wg.Device(iface)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Peers) != 1 || d.Peers[0].PresharedKey.String() != quickValue(first, "PresharedKey") {
		t.Fatalf("the device does not hold the issued config's preshared key: %+v", d.Peers)
	}

	// Rotate while the tunnel carries pings and the device is watched.
	var stop atomic.Bool
	var failedPings, fewestPeers atomic.Int32
	fewestPeers.Store(1)
	var watch sync.WaitGroup
	watch.Add(2)
	go func() {
		defer watch.Done()
		for !stop.Load() {
			if ping() != nil {
				failedPings.Add(1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	go func() {
		defer watch.Done()
		for !stop.Load() {
			if d, err := wg.Device(iface); err == nil && int32(len(d.Peers)) < fewestPeers.Load() {
				fewestPeers.Store(int32(len(d.Peers)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	out := admin("servers", "rekey", "ams-1", "--wait", "30s")
	if !strings.Contains(out, "re-sealed") {
		t.Errorf("servers rekey said:\n%s", out)
	}
	newKey, _, err := secret.LoadOrCreateNodeKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if newKey == oldKey {
		t.Fatal("the node key file still holds the old key")
	}
	if info, _ := os.Stat(keyFile); info.Mode().Perm() != 0o600 {
		t.Fatalf("rotated key file mode %v", info.Mode())
	}
	waitUntil(t, 10*time.Second, "every peer sealed to the new key", func() bool {
		k, sealed := nodeKeyOnRow()
		return k == newKey.PublicKey() && sealed == k
	})
	time.Sleep(500 * time.Millisecond)
	// Stop watching before the second trial: it re-addresses the client's
	// own interface, which drops a ping that has nothing to do with the key.
	stop.Store(true)
	watch.Wait()
	second := trial(tgtest.User{ID: 6102, FirstName: "B", LanguageCode: "en"})
	if n := failedPings.Load(); n > 0 {
		t.Errorf("%d pings failed during the rotation", n)
	}
	if n := fewestPeers.Load(); n < 1 {
		t.Errorf("the device dropped to %d peers during the rotation", n)
	}

	rows := nodeSealedRows(t, pool)
	if len(rows) != 2 {
		t.Fatalf("%d peers, want 2", len(rows))
	}
	for i, sec := range rows {
		if sec.NodeKey != newKey.PublicKey() {
			t.Errorf("peer %d is sealed to %q, not the new key", i, sec.NodeKey)
		}
		if _, err := secret.NewNodeKeys(newKey).OpenPresharedKey(sec); err != nil {
			t.Errorf("peer %d does not open with the new key: %v", i, err)
		}
		sec.NodeKey = oldKey.PublicKey() // try the bytes with the old key, whatever the row says
		if _, err := secret.NewNodeKeys(oldKey).OpenPresharedKey(sec); err == nil {
			t.Errorf("peer %d still opens with the old node key", i)
		}
	}

	// Restarted on the new key, the node converges: nothing to register,
	// both peers on the device with their issued preshared keys.
	stopNode()
	stopNode, _, _ = startWgbotCommand(t, nodeEnv, "node")
	defer stopNode()
	wgtest.Exec(t, cliNS, "ip", "address", "flush", "dev", cliIf)
	wgtest.QuickUp(t, cliNS, cliIf, first)
	if err := ping(); err != nil {
		t.Fatalf("the first config no longer tunnels after the rotation: %v", err)
	}
	d, err = wg.Device(iface)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{quickValue(first, "PresharedKey"): "first", quickValue(second, "PresharedKey"): "second"}
	for _, p := range d.Peers {
		delete(want, p.PresharedKey.String())
	}
	if len(d.Peers) != 2 || len(want) != 0 {
		t.Fatalf("device after the restart: %d peers, missing preshared keys of %v", len(d.Peers), want)
	}
}

// quickValue is the value of the first "Name = value" line of a config.
func quickValue(conf, name string) string {
	for _, l := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(l, name+" = "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// A node refuses to start with the master key in its settings, with a
// key file others may read, and with a key file that is not the one its
// server row names (unless the operator asked for a rotation): each with
// a clear error, and nothing registered.
func TestNodeKeyRefusals(t *testing.T) {
	dbURL := pgtest.URL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "LOG_FORMAT": "json"}
	wgbotOK(t, env, "migrate")
	wgbotOK(t, env, "servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "ams.example.com:51820", "--subnet", "10.78.0.0/24")
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	serverKey, _ := wgtypes.GeneratePrivateKey()
	os.WriteFile(conf, []byte("[Interface]\nListenPort = 51820\nPrivateKey = "+serverKey.String()+"\n"), 0o600)
	node := nodeSettings(t, dbURL, conf, "ams-1")
	node["WG_APPLY_MODE"] = "file"
	refused := func(env map[string]string, want string) {
		t.Helper()
		out, err := runWgbot(env, "node").CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("node started or failed otherwise (want %q): %v\n%s", want, err, tail(string(out), 5))
		}
	}

	withMaster := map[string]string{"MASTER_KEY": benchMasterKey}
	for k, v := range node {
		withMaster[k] = v
	}
	refused(withMaster, "must not hold it")
	if _, err := os.Stat(node["NODE_KEY_FILE"]); !os.IsNotExist(err) {
		t.Fatal("a refused node made a key file")
	}

	stop, logs, _ := startWgbotCommand(t, node, "node")
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var registered string
	waitUntil(t, 10*time.Second, "the node's key on its row", func() bool {
		pool.QueryRow(context.Background(), `SELECT node_key FROM servers WHERE name = 'ams-1'`).Scan(&registered)
		return registered != ""
	})
	// The key is registered before the node is up; stop it once it is.
	waitUntil(t, 10*time.Second, "the node running", func() bool { return strings.Contains(logs.String(), "wgbot node running") })
	stop()

	os.Chmod(node["NODE_KEY_FILE"], 0o644)
	refused(node, "chmod 600")
	os.Chmod(node["NODE_KEY_FILE"], 0o600)

	other, _ := secret.GenerateNodeKey()
	if err := secret.ReplaceNodeKey(node["NODE_KEY_FILE"], other); err != nil {
		t.Fatal(err)
	}
	refused(node, "servers rekey")
	var after string
	pool.QueryRow(context.Background(), `SELECT node_key FROM servers WHERE name = 'ams-1'`).Scan(&after)
	if after != registered {
		t.Fatal("a refused node changed the registered key")
	}
	os.WriteFile(node["NODE_KEY_FILE"], []byte("not a key\n"), 0o600)
	refused(node, "want a 32-byte private key")
}
