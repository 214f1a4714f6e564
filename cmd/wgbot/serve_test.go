package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/payment/cryptopay/cryptopaytest"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgconf"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// A whole `wgbot serve` process against the Bot API, YooKassa and Crypto
// Pay emulators: users take trials and pay, then SIGTERM arrives in the
// middle of a burst of 100 trial requests. Every request either completed
// (the user has the config) or never started; the database and wg0.conf
// agree; the process exits within its shutdown timeout; and no secret is
// in the log of the whole run.
func TestServeShutdownAndSecrets(t *testing.T) {
	ctx := context.Background()
	const (
		botToken    = "7000000001:AAH-secret-bot-token-0123456789abcdef"
		shopSecret  = "live_yookassa-secret-key-0123456789"
		cryptoToken = "12345:AAcrypto-pay-secret-token-987654321"
		dbPassword  = "db-Pa55word-secret"
	)
	tg := tgtest.New(botToken)
	defer tg.Close()
	yk := yookassatest.NewServer("shop-42", shopSecret)
	defer yk.Close()
	cp := cryptopaytest.NewServer(cryptoToken)
	defer cp.Close()

	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "wg0.conf")
	serverKey, _ := wgtypes.GeneratePrivateKey()
	os.WriteFile(conf, []byte("[Interface]\nAddress = 10.90.0.1/22\nListenPort = 51820\nPrivateKey = "+serverKey.String()+"\n"), 0o600)
	masterKey := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	httpAddr := freeAddr(t)
	env := map[string]string{
		// trust auth ignores the password, but it is in the URL wgbot reads
		"DATABASE_URL":     strings.Replace(dbURL, "postgres@", "postgres:"+dbPassword+"@", 1),
		"BOT_TOKEN":        botToken,
		"TELEGRAM_API_URL": tg.URL(),
		"WG_ENDPOINT":      "vpn.example.com:51820", "WG_SUBNET": "10.90.0.0/22",
		"WG_APPLY_MODE": "file", "WG_CONFIG_PATH": conf, "MASTER_KEY": masterKey,
		"HTTP_ADDR": httpAddr, "LOG_FORMAT": "json", "LOG_LEVEL": "debug", "ADMIN_IDS": "1",
		"YOOKASSA_SHOP_ID": "shop-42", "YOOKASSA_SECRET_KEY": shopSecret, "YOOKASSA_API_URL": yk.URL,
		"YOOKASSA_ALLOWED_IPS": "127.0.0.1", "YOOKASSA_RETURN_URL": "https://t.me/wgbot_test_bot",
		"CRYPTOPAY_TOKEN": cryptoToken, "CRYPTOPAY_API_URL": cp.BaseURL(),
	}
	var logs lockedBuffer
	cmd := runWgbot(env, "serve")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("wgbot log (tail):\n%s", tail(logs.String(), 60))
		}
	}()
	waitUntil(t, 20*time.Second, "wgbot to serve", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	menu := func(u tgtest.User) tgtest.Message {
		tg.SendText(u, "/start")
		msgs, err := tg.WaitMessages(wctx, u.ID, 1)
		if err != nil {
			t.Fatalf("no menu for %d: %v", u.ID, err)
		}
		return msgs[0]
	}
	// One user pays by card, another in crypto, through the real webhooks.
	payer := tgtest.User{ID: 500, FirstName: "Payer", LanguageCode: "en"}
	press := func(u tgtest.User, data string) {
		for _, m := range tg.Messages(u.ID) {
			for _, row := range m.Keyboard {
				for _, b := range row {
					if b.CallbackData == data {
						if _, err := tg.PressButton(u, m.ID, data); err != nil {
							t.Fatal(err)
						}
						return
					}
				}
			}
		}
		t.Fatalf("no button %q for %d", data, u.ID)
	}
	waitButton := func(u tgtest.User, data string) {
		waitUntil(t, 10*time.Second, "button "+data, func() bool {
			for _, m := range tg.Messages(u.ID) {
				for _, row := range m.Keyboard {
					for _, b := range row {
						if b.CallbackData == data {
							return true
						}
					}
				}
			}
			return false
		})
	}
	menu(payer)
	press(payer, "buy")
	waitButton(payer, "buy:plan:month")
	press(payer, "buy:plan:month")
	waitButton(payer, "buy:pay:yookassa:month")
	press(payer, "buy:pay:yookassa:month")
	waitUntil(t, 10*time.Second, "a YooKassa payment", func() bool { return len(yk.Payments()) == 1 })
	ykID := yk.Payments()[0].ID
	yk.Succeed(ykID)
	if err := yk.Notify(wctx, "http://"+httpAddr+"/webhooks/yookassa", "payment.succeeded", ykID); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the paid config", func() bool { return docs(tg, payer.ID) == 1 })
	press(payer, "buy")
	waitButton(payer, "buy:pay:cryptopay:month")
	press(payer, "buy:pay:cryptopay:month")
	waitUntil(t, 10*time.Second, "a Crypto Pay invoice", func() bool { return len(cp.Invoices()) == 1 })
	inv := cp.Invoices()[0].InvoiceID
	cp.Pay(inv)
	if err := cp.Notify(wctx, "http://"+httpAddr+"/webhooks/cryptopay", inv); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the crypto payment's message", func() bool {
		for _, m := range tg.Messages(payer.ID) {
			if strings.Contains(m.Text, "Your subscription is extended until") {
				return true
			}
		}
		return false
	})

	// 100 users with a menu each, then a burst of Trial presses with SIGTERM
	// in the middle of it.
	users := make([]tgtest.User, 100)
	menus := make([]tgtest.Message, 100)
	for i := range users {
		users[i] = tgtest.User{ID: int64(1000 + i), FirstName: "U", LanguageCode: "en"}
		menus[i] = menu(users[i])
	}
	for i, u := range users {
		tg.PressButton(u, menus[i].ID, "trial")
	}
	waitUntil(t, 20*time.Second, "the first trials of the burst", func() bool {
		n := 0
		for _, u := range users {
			n += docs(tg, u.ID)
		}
		return n >= 5
	})
	cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("wgbot exited with %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("wgbot did not exit within its shutdown timeout")
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(10*time.Millisecond))

	// Nothing half-done: a user has a trial row exactly when they got the
	// config, and wg0.conf holds exactly the active peers.
	var withTrial int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE is_trial`).Scan(&withTrial); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, u := range users {
		var n int
		pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE u.telegram_id = $1`, u.ID).Scan(&n)
		d := docs(tg, u.ID)
		if n != d {
			t.Errorf("user %d: %d subscriptions but %d configs delivered", u.ID, n, d)
		}
		got += d
	}
	if got != withTrial || got == 0 {
		t.Errorf("%d configs delivered, %d trials in the database", got, withTrial)
	}
	t.Logf("%d of 100 trials completed before the shutdown", got)
	var active int
	pool.QueryRow(ctx, `SELECT count(*) FROM peers WHERE status = 'active'`).Scan(&active)
	raw, _ := os.ReadFile(conf)
	f, err := wgconf.Parse(raw)
	if err != nil {
		t.Fatalf("wg0.conf after shutdown: %v", err)
	}
	if len(f.ManagedPeers()) != active {
		t.Errorf("wg0.conf has %d peers, the database %d active", len(f.ManagedPeers()), active)
	}

	// No secret anywhere in the run's log: tokens, keys, the password, and
	// every client private and preshared key that was delivered.
	secrets := []string{botToken, strings.Split(botToken, ":")[1], shopSecret, cryptoToken, dbPassword, masterKey, serverKey.String()}
	for _, id := range append([]int64{payer.ID}, ids(users)...) {
		for _, m := range tg.Messages(id) {
			if m.Document != nil {
				secrets = append(secrets, keyLines(m.Document.Data)...)
			}
		}
	}
	text := logs.String()
	if !strings.Contains(text, `"request_id"`) || !strings.Contains(text, `"job_id"`) {
		t.Error("the log lacks request or job ids")
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("the log contains a secret (%.6s…)", s)
		}
	}
	t.Logf("checked %d secrets against %d log lines", len(secrets), strings.Count(text, "\n"))
}

func docs(tg *tgtest.Server, chatID int64) int {
	n := 0
	for _, m := range tg.Messages(chatID) {
		if m.Document != nil {
			n++
		}
	}
	return n
}

func ids(users []tgtest.User) []int64 {
	out := make([]int64, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

var keyLine = regexp.MustCompile(`(?m)^(PrivateKey|PresharedKey) = (\S+)`)

func keyLines(conf []byte) []string {
	var out []string
	for _, m := range keyLine.FindAllSubmatch(conf, -1) {
		out = append(out, string(m[2]))
	}
	return out
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprint(strings.Join(lines, "\n"))
}
