package main

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgconf"
	"wgbot/wireguard/wgtest"
)

// hostEnv is the settings of a `wgbot serve` for one WireGuard host with
// a /16 subnet and its own wg0.conf, in the given apply mode; for device
// mode, deviceHost adds the interface.
func hostEnv(t testing.TB, dbURL, botToken, telegramURL, mode string) (env map[string]string, serverKey wgtypes.Key) {
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	serverKey, _ = wgtypes.GeneratePrivateKey()
	os.WriteFile(conf, []byte("[Interface]\nAddress = 10.64.0.1/16\nListenPort = 51820\nPrivateKey = "+serverKey.String()+"\n"), 0o600)
	return map[string]string{
		"DATABASE_URL": dbURL, "BOT_TOKEN": botToken, "TELEGRAM_API_URL": telegramURL,
		"WG_ENDPOINT": "vpn.example.com:51820", "WG_SUBNET": "10.64.0.0/16", "WG_APPLY_MODE": mode, "WG_CONFIG_PATH": conf,
		"MASTER_KEY": benchMasterKey, "LOG_FORMAT": "json", "HTTP_ADDR": freeAddr(t), "METRICS_ADDR": freeAddr(t),
	}, serverKey
}

// deviceHost starts wireguard-go in a new namespace with the server's key
// and points env at it; wgbot reaches it through its UAPI socket.
func deviceHost(t testing.TB, env map[string]string, serverKey wgtypes.Key) (wg *wgctrl.Client, ns string) {
	wg, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wg.Close() })
	ns = wgtest.Netns(t, "host")
	iface := wgtest.UniqueName(t, "wgh")
	wgtest.StartWireGuardGo(t, ns, iface)
	port := 51820
	if err := wg.ConfigureDevice(iface, wgtypes.Config{PrivateKey: &serverKey, ListenPort: &port}); err != nil {
		t.Fatal(err)
	}
	env["WG_INTERFACE"] = iface
	return wg, ns
}

// Two serve processes on one host share wg0.conf and the device (each
// with its own bot, as a second instance would): under a burst of trials
// on both, they take turns under the file lock, and the device and the
// file end equal to the database, with no peer lost or doubled.
func TestTwoServeProcessesOneHost(t *testing.T) {
	wgtest.RequireTools(t)
	dbURL := pgtest.URL(t)
	const tokenA, tokenB = "7000000004:AAH-host-a-token-0123456789abcdef", "7000000005:AAH-host-b-token-0123456789abcdef"
	tgA, tgB := tgtest.New(tokenA), tgtest.New(tokenB)
	defer tgA.Close()
	defer tgB.Close()
	envA, serverKey := hostEnv(t, dbURL, tokenA, tgA.URL(), "device")
	wg, _ := deviceHost(t, envA, serverKey)
	envA["USAGE_INTERVAL"] = "300ms" // both processes collect the device's traffic
	envB := maps.Clone(envA)
	envB["BOT_TOKEN"], envB["TELEGRAM_API_URL"] = tokenB, tgB.URL()
	envB["HTTP_ADDR"], envB["METRICS_ADDR"] = freeAddr(t), freeAddr(t)
	stopA, _, _ := startWgbotLogged(t, envA)
	defer stopA()
	stopB, _, _ := startWgbotLogged(t, envB)
	defer stopB()

	const each = 40
	users := func(first int64) []tgtest.User {
		out := make([]tgtest.User, each)
		for i := range out {
			out[i] = tgtest.User{ID: first + int64(i), FirstName: "U", LanguageCode: "en"}
		}
		return out
	}
	usersA, usersB := users(10_000), users(20_000)
	menusA, menusB := trialMenus(t, tgA, usersA), trialMenus(t, tgB, usersB)
	for i := range each { // interleaved, so both processes issue at once
		tgA.PressButton(usersA[i], menusA[i].ID, "trial")
		tgB.PressButton(usersB[i], menusB[i].ID, "trial")
	}
	waitDocuments(t, tgA, usersA, time.Minute)
	waitDocuments(t, tgB, usersB, time.Minute)

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(context.Background(), `SELECT public_key FROM peers WHERE status = 'active' ORDER BY public_key`)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for rows.Next() {
		var k string
		rows.Scan(&k)
		want = append(want, k)
	}
	if rows.Err() != nil || len(want) != 2*each {
		t.Fatalf("%d active peers in the database (%v), want %d", len(want), rows.Err(), 2*each)
	}
	var onDevice, inFile []string
	waitUntil(t, 10*time.Second, "the device and wg0.conf to equal the database", func() bool {
		d, err := wg.Device(envA["WG_INTERFACE"])
		if err != nil {
			t.Fatal(err)
		}
		onDevice = onDevice[:0]
		for _, p := range d.Peers {
			onDevice = append(onDevice, p.PublicKey.String())
		}
		f, err := wgconf.Parse(mustRead(t, envA["WG_CONFIG_PATH"]))
		if err != nil {
			t.Fatal(err)
		}
		inFile = inFile[:0]
		for _, p := range f.ManagedPeers() {
			inFile = append(inFile, p.PublicKey)
		}
		slices.Sort(onDevice)
		slices.Sort(inFile)
		return slices.Equal(onDevice, want) && slices.Equal(inFile, want)
	})
	// serve owns the device in device mode, so it collects: every peer on
	// the device gets its counters row, whichever process wrote it.
	waitUntil(t, 10*time.Second, "a traffic collection of every peer", func() bool {
		var counted int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM peer_counters c JOIN usage_collections k ON true`).Scan(&counted)
		return err == nil && counted == 2*each
	})
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// serve in device mode takes the server's public key from the device: one
// without a private key is refused with what to do, rather than handing
// users a config for the key of nothing.
func TestServeRefusesDeviceWithoutKey(t *testing.T) {
	wgtest.RequireTools(t)
	tg := tgtest.New(benchBotToken)
	defer tg.Close()
	env, _ := hostEnv(t, pgtest.URL(t), benchBotToken, tg.URL(), "device")
	delete(env, "WG_SERVER_PUBLIC_KEY")
	ns, iface := wgtest.Netns(t, "nokey"), wgtest.UniqueName(t, "wgk")
	wgtest.StartWireGuardGo(t, ns, iface)
	env["WG_INTERFACE"] = iface
	out, err := runWgbot(env, "serve").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "has no private key") {
		t.Fatalf("serve on a device without a key: %v\n%s", err, tail(string(out), 10))
	}
}
