package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgtest"
)

// outageText is how the outage credit's message begins (telegram's
// mOutageCredited in English).
const outageText = "Sorry: our server in "

// Outage credit, end to end (issue 19 §5): two hosts, each wireguard-go
// with its own `wgbot node` (as the least-privilege role), and two serve
// processes (two bots on one database). ams-1's node is killed (SIGKILL)
// past OUTAGE_CREDIT_AFTER and restarted; meanwhile fra-1's node loses the
// database for as long but keeps running. Every subscription with a device
// on ams-1 gets the downtime back (rounded up to the minute) exactly once,
// one ledger row and one message each; fra-1's get nothing.
func TestOutageCreditAfterNodeRestart(t *testing.T) {
	wgtest.RequireTools(t)
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	tokens := []string{"7000000011:AAH-outage-a-token-0123456789abcdef", "7000000012:AAH-outage-b-token-0123456789abcdef"}
	var bots []*tgtest.Server
	var envs []map[string]string
	for _, token := range tokens {
		tg := tgtest.New(token)
		defer tg.Close()
		env, _ := hostEnv(t, dbURL, token, tg.URL(), "node")
		env["NODE_SERVER"], env["NODE_DOWN_AFTER"], env["OUTAGE_CREDIT_AFTER"] = "ams-1", "2s", "3s"
		bots, envs = append(bots, tg), append(envs, env)
	}
	admin := func(args ...string) { wgbotOK(t, envs[0], args...) }
	admin("migrate")
	admin("servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "ams.example.com:51820", "--subnet", "10.66.0.0/24")
	admin("servers", "add", "fra-1", "--location", "Frankfurt", "--endpoint", "fra.example.com:51820", "--subnet", "10.67.0.0/24")
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, string(mustRead(t, "../../deploy/node-role.sql"))); err != nil {
		t.Fatalf("deploy/node-role.sql: %v", err)
	}
	nodeURL := strings.Replace(dbURL, "postgres@", "wgbot_node@", 1)
	proxy, proxiedURL := pgtest.NewProxy(t, nodeURL)
	amsEnv := nodeSettings(t, nodeURL, filepath.Join(t.TempDir(), "wg0.conf"), "ams-1")
	fraEnv := cutNodeSettings(t, proxiedURL, filepath.Join(t.TempDir(), "wg0.conf"), "fra-1")
	for _, env := range []map[string]string{amsEnv, fraEnv} {
		key, _ := wgtypes.GeneratePrivateKey()
		deviceHost(t, env, key)
	}
	_, _, amsProc := startWgbotCommand(t, amsEnv, "node")
	stopFra, _, _ := startWgbotCommand(t, fraEnv, "node")
	defer stopFra()
	for _, env := range envs {
		stop, _, _ := startWgbotLogged(t, env)
		defer stop()
	}
	waitUntil(t, 15*time.Second, "both nodes' heartbeats", func() bool {
		var list []serverView
		out, _ := runWgbot(envs[0], "servers", "list", "--json").Output()
		json.Unmarshal(out, &list)
		return len(list) == 2 && list[0].State == "active" && list[1].State == "active"
	})

	// Two trials on each server (the other one drained meanwhile). Every
	// user opens the second bot too, so whichever serve process works a
	// message's job can send it.
	next := int64(6000)
	trial := func() tgtest.User {
		t.Helper()
		next++
		u := tgtest.User{ID: next, FirstName: "U", LanguageCode: "en"}
		trialMenus(t, bots[1], []tgtest.User{u})
		menus := trialMenus(t, bots[0], []tgtest.User{u})
		if _, err := bots[0].PressButton(u, menus[0].ID, "trial"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 20*time.Second, "the trial's config", func() bool {
			if m, ok := buttonMessage(bots[0], u.ID, "loc:t:any"); ok {
				bots[0].PressButton(u, m.ID, "loc:t:any")
			}
			for _, m := range bots[0].Messages(u.ID) {
				if m.Document != nil {
					return true
				}
			}
			return false
		})
		return u
	}
	onServer := map[string][]tgtest.User{}
	for _, c := range []struct{ on, drained string }{{"ams-1", "fra-1"}, {"fra-1", "ams-1"}} {
		admin("servers", "drain", c.drained)
		onServer[c.on] = append(onServer[c.on], trial(), trial())
		admin("servers", "enable", c.drained)
	}
	expiry := func(u tgtest.User) (at time.Time) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT s.expires_at FROM subscriptions s JOIN users u ON u.id = s.user_id
			WHERE u.telegram_id = $1 AND s.status = 'active'`, u.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	before := map[int64]time.Time{}
	for _, users := range onServer {
		for _, u := range users {
			before[u.ID] = expiry(u)
		}
	}
	var server string
	if err := pool.QueryRow(ctx, `SELECT string_agg(sv.name, ',' ORDER BY u.telegram_id) FROM peers p JOIN servers sv ON sv.id = p.server_id
		JOIN subscriptions s ON s.id = p.subscription_id JOIN users u ON u.id = s.user_id`).Scan(&server); err != nil || server != "ams-1,ams-1,fra-1,fra-1" {
		t.Fatalf("the trials' servers: %q %v, want two on each", server, err)
	}

	// ams-1's node dies; fra-1's loses the database for as long.
	if err := amsProc.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	proxy.Cut()
	time.Sleep(5 * time.Second) // past OUTAGE_CREDIT_AFTER
	var silent time.Duration
	if err := pool.QueryRow(ctx, `SELECT now() - n.seen_at FROM node_status n JOIN servers sv ON sv.id = n.server_id
		WHERE sv.name = 'fra-1'`).Scan(&silent); err != nil || silent < 3*time.Second {
		t.Fatalf("fra-1's node was silent only %v during the cut (%v), want past OUTAGE_CREDIT_AFTER", silent, err)
	}
	proxy.Restore()
	stopAms, _, _ := startWgbotCommand(t, amsEnv, "node")
	defer stopAms()
	restarted := time.Now()

	var credit time.Duration
	var started, ended time.Time
	waitUntil(t, 45*time.Second, "ams-1's outage settled", func() bool {
		err := pool.QueryRow(ctx, `SELECT o.credit, o.started_at, o.ended_at FROM server_outages o JOIN servers sv ON sv.id = o.server_id
			WHERE sv.name = 'ams-1' AND o.settled_at IS NOT NULL`).Scan(&credit, &started, &ended)
		return err == nil
	})
	if down := ended.Sub(started); down < restarted.Sub(killed) || down > restarted.Sub(killed)+10*time.Second || credit != time.Minute {
		t.Errorf("ams-1's outage lasted %v and credited %v; the node was gone %v, want that (plus up to a heartbeat) and 1m0s",
			down, credit, restarted.Sub(killed))
	}
	// Another settling round or two, with both serve processes running.
	time.Sleep(16 * time.Second)
	messages := func(u tgtest.User) (n int) {
		for _, tg := range bots {
			for _, m := range tg.Messages(u.ID) {
				if strings.HasPrefix(m.Text, outageText) {
					n++
				}
			}
		}
		return n
	}
	waitUntil(t, 20*time.Second, "the outage messages", func() bool {
		return messages(onServer["ams-1"][0]) > 0 && messages(onServer["ams-1"][1]) > 0
	})
	time.Sleep(2 * time.Second) // a second message, if any, would be on its way
	for _, u := range onServer["ams-1"] {
		if got, want := expiry(u), before[u.ID].Add(credit); !got.Equal(want) {
			t.Errorf("user %d on ams-1: the subscription ends %s, want %s (the outage's credit, once)", u.ID, got, want)
		}
		var ledger int
		pool.QueryRow(ctx, `SELECT count(*) FROM payments p JOIN users u ON u.id = p.user_id WHERE u.telegram_id = $1 AND p.kind = 'outage'`, u.ID).Scan(&ledger)
		if ledger != 1 {
			t.Errorf("user %d on ams-1: %d outage ledger rows, want 1", u.ID, ledger)
		}
		if n := messages(u); n != 1 {
			t.Errorf("user %d on ams-1: %d outage messages, want 1", u.ID, n)
		}
	}
	for _, u := range onServer["fra-1"] {
		if got := expiry(u); !got.Equal(before[u.ID]) {
			t.Errorf("user %d on fra-1 got credit: the subscription ends %s, was %s", u.ID, got, before[u.ID])
		}
		if n := messages(u); n != 0 {
			t.Errorf("user %d on fra-1: %d outage messages, want none", u.ID, n)
		}
	}
	var outages, rows int
	pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM server_outages), (SELECT count(*) FROM payments WHERE kind = 'outage')`).Scan(&outages, &rows)
	if outages != 1 || rows != 2 {
		t.Errorf("%d outages and %d outage ledger rows, want ams-1's one and two", outages, rows)
	}
}

// A single host's serve runs its WireGuard side in-process and reports no
// heartbeat: restarting serve (the device keeps serving meanwhile) is no
// outage, whatever OUTAGE_CREDIT_AFTER says.
func TestServeRestartIsNoOutage(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	tg := tgtest.New(outageBotToken)
	defer tg.Close()
	env := serveEnv(t, dbURL, tg.URL(), nil)
	env["OUTAGE_CREDIT_AFTER"] = "1s"
	stop := startWgbot(t, env)
	u := tgtest.User{ID: 77, FirstName: "A", LanguageCode: "en"}
	menus := trialMenus(t, tg, []tgtest.User{u})
	if _, err := tg.PressButton(u, menus[0].ID, "trial"); err != nil {
		t.Fatal(err)
	}
	waitDocuments(t, tg, []tgtest.User{u}, 20*time.Second)
	stop()
	time.Sleep(3 * time.Second)
	stop = startWgbot(t, env)
	defer stop()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	waitUntil(t, 20*time.Second, "the restarted serve's outage job to run", func() bool {
		var runs int
		pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'outage_due' AND state = 'completed'`).Scan(&runs)
		return runs >= 2 // one per start
	})
	var outages, rows int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM server_outages), (SELECT count(*) FROM payments WHERE kind = 'outage')`).Scan(&outages, &rows); err != nil {
		t.Fatal(err)
	}
	if outages != 0 || rows != 0 {
		t.Errorf("a serve restart made %d outages and %d credits, want none", outages, rows)
	}
}
