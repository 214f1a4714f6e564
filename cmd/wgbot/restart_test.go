package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgtest"
)

// TestDatabaseRestartMidBurst: PostgreSQL goes away in the middle of a
// burst of 100 trials and comes back, as a restart or a fail-over looks
// to its clients: every connection of serve and of the node is dropped,
// and new ones are refused for three seconds. Every user's press ends in a
// config or in words saying to try again, never in silence; nothing is
// half-done (no trial without its device, no address twice, no config
// sent for a peer that does not exist); both processes recover by
// themselves, and a user refused during the outage gets a config by
// pressing again.
func TestDatabaseRestartMidBurst(t *testing.T) {
	wgtest.RequireTools(t)
	dbURL := pgtest.URL(t)
	const token = "7000000011:AAH-restart-token-0123456789abcdef"
	tg := tgtest.New(token)
	defer tg.Close()
	env, serverKey := hostEnv(t, dbURL, token, tg.URL(), "node")
	admin := func(args ...string) { wgbotOK(t, env, args...) }
	admin("migrate")
	admin("servers", "add", "ams-1", "--location", "Amsterdam", "--endpoint", "ams.example.com:51820", "--subnet", "10.64.0.0/24", "--capacity", "250")
	proxy, proxiedURL := pgtest.NewProxy(t, dbURL)
	env["DATABASE_URL"], env["NODE_SERVER"], env["DB_CONNECT_TIMEOUT"] = proxiedURL, "ams-1", "1s"
	nodeEnv := cutNodeSettings(t, proxiedURL, env["WG_CONFIG_PATH"], "ams-1")
	wg, _ := deviceHost(t, nodeEnv, serverKey)
	stopNode, _, _ := startWgbotCommand(t, nodeEnv, "node")
	defer stopNode()
	stopServe, serveLog, _ := startWgbotLogged(t, env)
	defer stopServe()
	defer func() {
		if t.Failed() {
			t.Logf("serve log:\n%s", serveLog.String())
		}
	}()

	const n = 100
	var users []tgtest.User
	for i := range n {
		users = append(users, tgtest.User{ID: int64(9000 + i), FirstName: "U", LanguageCode: "en"})
	}
	menus := trialMenus(t, tg, users)
	pressed := make([]int, n) // messages each chat had before the press
	presses := make([]int64, n)
	press := func(i int) {
		pressed[i] = len(tg.Messages(users[i].ID))
		id, err := tg.PressButton(users[i], menus[i].ID, "trial")
		if err != nil {
			t.Fatal(err)
		}
		presses[i] = id
	}
	for i := range 40 {
		press(i)
	}
	waitUntil(t, 30*time.Second, "the first configs", func() bool {
		got := 0
		for _, u := range users[:40] {
			got += docs(tg, u.ID)
		}
		return got >= 20
	})
	proxy.Cut()
	restored := make(chan struct{})
	go func() {
		time.Sleep(3 * time.Second)
		proxy.Restore()
		close(restored)
	}()
	for i := 40; i < n; i++ {
		press(i)
	}
	// Every press is answered: a config, words to try again in the chat,
	// or on the button (the bot could not even read the user).
	answered := func(i int) (config, refused bool) {
		for _, m := range tg.Messages(users[i].ID)[pressed[i]:] {
			config = config || m.Document != nil
			refused = refused || strings.Contains(strings.ToLower(m.Text), "try again")
		}
		if a, ok := tg.CallbackAnswer(presses[i]); ok && a.ShowAlert && a.Text != "" {
			refused = true
		}
		return config, refused
	}
	silent := 0
	defer func() {
		if t.Failed() && silent > 0 {
			for i, u := range users {
				if c, r := answered(i); !c && !r {
					for _, m := range tg.Messages(u.ID) {
						t.Logf("silent user %d: %q doc=%v", u.ID, m.Text, m.Document != nil)
					}
					break
				}
			}
		}
	}()
	waitUntil(t, 90*time.Second, "an answer to every press", func() bool {
		silent = 0
		for i := range users {
			if c, r := answered(i); !c && !r {
				silent++
			}
		}
		return silent == 0
	})
	refused := 0
	for i := range users {
		if c, _ := answered(i); !c {
			refused++
		}
	}
	t.Logf("%d of %d trials refused during the outage", refused, n)
	// Once the database is back, refused users press again, as told; a
	// press is a press of the newest Trial button in their chat.
	<-restored
	for attempt := 0; ; attempt++ {
		var again []int
		for i, u := range users {
			if docs(tg, u.ID) == 0 {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		if attempt == 5 {
			t.Fatalf("%d users still without a config after %d tries once the database was back", len(again), attempt)
		}
		for _, i := range again {
			m, ok := buttonMessage(tg, users[i].ID, "trial")
			if !ok {
				t.Fatalf("user %d has no Trial button left", users[i].ID)
			}
			menus[i] = m
			press(i)
		}
		waitUntil(t, 60*time.Second, "an answer to every press again", func() bool {
			for _, i := range again {
				if c, r := answered(i); !c && !r {
					return false
				}
			}
			return true
		})
		t.Logf("try %d: %d users pressed again", attempt+1, len(again))
	}
	waitDocuments(t, tg, users, 30*time.Second)

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	var peers, halfDone, dup int
	if err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM peers WHERE status = 'active'),
			(SELECT count(*) FROM subscriptions s WHERE NOT EXISTS (SELECT 1 FROM peers p WHERE p.subscription_id = s.id)),
			(SELECT count(*) FROM (SELECT ip FROM peers WHERE status <> 'revoked' GROUP BY ip HAVING count(*) > 1) d)`).
		Scan(&peers, &halfDone, &dup); err != nil {
		t.Fatal(err)
	}
	if peers != n || halfDone != 0 || dup != 0 {
		t.Errorf("%d active peers (want %d), %d subscriptions without a device, %d addresses twice", peers, n, halfDone, dup)
	}
	// Every config a user got is for their one peer.
	for _, u := range users {
		var want string
		if err := pool.QueryRow(ctx, `SELECT p.ip::text FROM peers p JOIN subscriptions s ON s.id = p.subscription_id
			JOIN users u ON u.id = s.user_id WHERE u.telegram_id = $1 AND p.status = 'active'`, u.ID).Scan(&want); err != nil {
			t.Fatalf("user %d: %v", u.ID, err)
		}
		for _, m := range tg.Messages(u.ID) {
			if m.Document != nil && !strings.Contains(string(m.Document.Data), "Address = "+strings.TrimSuffix(want, "/32")) {
				t.Errorf("user %d got a config for another address than their peer's %s:\n%s", u.ID, want, m.Document.Data)
			}
		}
	}
	// The node converged: its device holds exactly the active peers.
	waitUntil(t, 20*time.Second, "the device to equal the database", func() bool {
		d, err := wg.Device(nodeEnv["WG_INTERFACE"])
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range d.Peers {
			got = append(got, p.PublicKey.String())
		}
		rows, _ := pool.Query(ctx, `SELECT public_key FROM peers WHERE status = 'active' ORDER BY 1`)
		var want []string
		for rows.Next() {
			var k string
			rows.Scan(&k)
			want = append(want, k)
		}
		rows.Close()
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}
