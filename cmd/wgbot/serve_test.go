package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/config"
	"wgbot/httpserver"
	"wgbot/payment/cryptopay/cryptopaytest"
	"wgbot/payment/yookassa"
	"wgbot/payment/yookassa/yookassatest"
	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
	"wgbot/wireguard/wgconf"
)

func freeAddr(t testing.TB) string {
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
		"HTTP_ADDR": httpAddr, "METRICS_ADDR": freeAddr(t), "LOG_FORMAT": "json", "LOG_LEVEL": "debug", "ADMIN_IDS": "1",
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
	press := func(u tgtest.User, data string) { pressButton(t, tg, u, data) }
	waitButton := func(u tgtest.User, data string) { waitForButton(t, tg, u, data) }
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

// pressButton presses the inline button with data in any of u's messages.
func pressButton(t *testing.T, tg *tgtest.Server, u tgtest.User, data string) {
	t.Helper()
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

// waitForButton waits until one of u's messages has a button with data.
func waitForButton(t *testing.T, tg *tgtest.Server, u tgtest.User, data string) {
	t.Helper()
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

// serveEnv is the settings of a `wgbot serve` in file mode against the
// given Telegram and Crypto Pay emulators, on fresh loopback addresses.
func serveEnv(t *testing.T, dbURL, telegramURL string, cp *cryptopaytest.Server) map[string]string {
	conf := filepath.Join(t.TempDir(), "wg0.conf")
	serverKey, _ := wgtypes.GeneratePrivateKey()
	os.WriteFile(conf, []byte("[Interface]\nAddress = 10.91.0.1/24\nListenPort = 51820\nPrivateKey = "+serverKey.String()+"\n"), 0o600)
	env := map[string]string{
		"DATABASE_URL": dbURL, "BOT_TOKEN": outageBotToken, "TELEGRAM_API_URL": telegramURL,
		"WG_ENDPOINT": "vpn.example.com:51820", "WG_SUBNET": "10.91.0.0/24", "WG_APPLY_MODE": "file", "WG_CONFIG_PATH": conf,
		"MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "LOG_FORMAT": "json",
		"HTTP_ADDR": freeAddr(t), "METRICS_ADDR": freeAddr(t),
	}
	if cp != nil {
		env["CRYPTOPAY_TOKEN"], env["CRYPTOPAY_API_URL"] = outageCryptoToken, cp.BaseURL()
	}
	return env
}

const (
	outageBotToken    = "7000000002:AAH-outage-bot-token-0123456789abcdef"
	outageCryptoToken = "12345:AAcrypto-pay-outage-token-987654321"
)

// startWgbot starts `wgbot serve` and returns a function that stops it
// with SIGTERM and waits for its exit; its log is shown if the test fails.
func startWgbot(t *testing.T, env map[string]string) (stop func()) {
	t.Helper()
	stop, _, _ = startWgbotLogged(t, env)
	return stop
}

// startWgbotLogged is startWgbot that also returns the process's output
// and the process.
func startWgbotLogged(t testing.TB, env map[string]string) (stop func(), output *lockedBuffer, proc *os.Process) {
	t.Helper()
	return startWgbotCommand(t, env, "serve")
}

// startWgbotCommand is startWgbotLogged for any long-running command.
func startWgbotCommand(t testing.TB, env map[string]string, args ...string) (stop func(), output *lockedBuffer, proc *os.Process) {
	t.Helper()
	return startProcess(t, runWgbot(env, args...))
}

// startProcess starts cmd, a wgbot, with its output logged, and stops it
// at the end of the test.
func startProcess(t testing.TB, cmd *exec.Cmd) (stop func(), output *lockedBuffer, proc *os.Process) {
	t.Helper()
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("wgbot log (tail):\n%s", tail(logs.String(), 40))
		}
	})
	return func() {
		t.Helper()
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("wgbot exited with %v", err)
			}
		case <-time.After(45 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("wgbot did not exit after SIGTERM")
		}
	}, logs, cmd.Process
}

// fetch GETs url and returns the status and body; status 0 when the
// request failed. It keeps no connection open.
func fetch(url string) (int, string) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The published listener (HTTP_ADDR) and the operator's (METRICS_ADDR) of
// a real process: /metrics only on the private one, /readyz on both, and
// HTTP_MAX_CONNECTIONS holds on the published one: with that many
// connections held open a further request is answered only once one of
// them goes.
func TestServeListenersAndConnectionCap(t *testing.T) {
	tg := tgtest.New(outageBotToken)
	defer tg.Close()
	env := serveEnv(t, pgtest.URL(t), tg.URL(), nil)
	const limit = 5
	env["HTTP_MAX_CONNECTIONS"] = fmt.Sprint(limit)
	public, private := "http://"+env["HTTP_ADDR"], "http://"+env["METRICS_ADDR"]
	stop := startWgbot(t, env)
	defer stop()
	waitUntil(t, 20*time.Second, "wgbot to be ready", func() bool {
		code, _ := fetch(public + "/readyz")
		return code == http.StatusOK
	})

	if code, body := fetch(private + "/metrics"); code != http.StatusOK || !strings.Contains(body, "wgbot_db_pool_max_connections") {
		t.Errorf("METRICS_ADDR /metrics = %d (%.80q)", code, body)
	}
	if code, _ := fetch(public + "/metrics"); code != http.StatusNotFound {
		t.Errorf("HTTP_ADDR /metrics = %d, want 404: metrics stay off the published listener", code)
	}
	for _, base := range []string{public, private} {
		if code, body := fetch(base + "/readyz"); code != http.StatusOK || !strings.Contains(body, `"telegram":"ok"`) {
			t.Errorf("%s/readyz = %d %s", base, code, body)
		}
		if code, _ := fetch(base + "/healthz"); code != http.StatusOK {
			t.Errorf("%s/healthz = %d", base, code)
		}
	}

	// Hold every connection the cap allows with half a request line.
	var holders []net.Conn
	for range limit {
		c, err := net.Dial("tcp", env["HTTP_ADDR"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /heal"))
		holders = append(holders, c)
	}
	time.Sleep(200 * time.Millisecond) // let the server take them all
	// This one lands in the kernel's backlog.
	c, err := net.Dial("tcp", env["HTTP_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: wgbot\r\nConnection: close\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(make([]byte, 1)); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a request beyond HTTP_MAX_CONNECTIONS=%d was answered while the others were held (%d bytes, %v)", limit, n, err)
	}
	holders[0].Close()
	freed := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the waiting request after a connection was freed: %v %v", resp, err)
	}
	t.Logf("answered %v after a held connection closed", time.Since(freed).Round(time.Millisecond))
}

// METRICS_ADDR equal to HTTP_ADDR (the default): one listener with every
// route. Its /readyz is the published one (fixed words, ready with
// Telegram only degraded) on loopback too, since a reverse proxy may
// publish a loopback listener; on an address others can reach, serve also
// warns that /metrics is published and METRICS_ADDR should be set.
func TestServeOneListener(t *testing.T) {
	tg := tgtest.New(outageBotToken)
	defer tg.Close()
	for _, c := range []struct {
		name, host string
		published  bool
	}{
		{"loopback", "127.0.0.1", false},
		{"all interfaces", "0.0.0.0", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := newOutage(t, tg.URL())
			env := serveEnv(t, pgtest.URL(t), out.srv.URL, nil)
			_, port, _ := net.SplitHostPort(env["HTTP_ADDR"])
			env["HTTP_ADDR"] = net.JoinHostPort(c.host, port)
			delete(env, "METRICS_ADDR")
			base := "http://127.0.0.1:" + port // only loopback traffic, whatever the listener
			stop, logs, _ := startWgbotLogged(t, env)
			defer stop()
			waitUntil(t, 20*time.Second, "wgbot to serve", func() bool {
				code, _ := fetch(base + "/healthz")
				return code == http.StatusOK
			})
			if code, body := fetch(base + "/metrics"); code != http.StatusOK || !strings.Contains(body, "wgbot_db_pool_max_connections") {
				t.Errorf("/metrics on the one listener = %d (%.80q)", code, body)
			}
			waitUntil(t, 20*time.Second, "the terse /readyz, ready with Telegram degraded", func() bool {
				code, body := fetch(base + "/readyz")
				return code == http.StatusOK && strings.Contains(body, `"telegram":"not connected yet (degraded)"`)
			})
			// Past the first attempt's failure, which the detailed
			// /readyz would show.
			time.Sleep(3 * time.Second)
			if code, body := fetch(base + "/readyz"); code != http.StatusOK || strings.Contains(body, "Bad Gateway") ||
				strings.Contains(body, "delete webhook") {
				t.Errorf("/readyz on the one listener = %d %s, want 200 in fixed words", code, body)
			}
			warned := strings.Contains(logs.String(), "set METRICS_ADDR")
			if warned != c.published {
				t.Errorf("warning to set METRICS_ADDR logged: %v, want %v\n%s", warned, c.published, tail(logs.String(), 20))
			}
			out.down.Store(false)
			waitUntil(t, 30*time.Second, "/readyz after Telegram is back", func() bool {
				code, body := fetch(base + "/readyz")
				return code == http.StatusOK && strings.Contains(body, `"telegram":"ok"`)
			})
		})
	}
}

// outage is a stand-in for the Bot API's address: while down it answers
// every call 502, as Telegram's front does in an outage; else it passes
// calls to the emulator.
type outage struct {
	down atomic.Bool
	srv  *httptest.Server
}

func newOutage(t *testing.T, target string) *outage {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	o := &outage{}
	o.down.Store(true)
	proxy := httputil.NewSingleHostReverseProxy(u)
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(`{"ok":false,"error_code":502,"description":"Bad Gateway"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// Item 7: Telegram is down when serve starts (deleteWebhook or setWebhook,
// and every other call, fail). The process keeps running and serves the
// payment webhooks: a Crypto Pay payment made meanwhile is credited. The
// published /readyz stays ready (a load balancer must keep sending the
// webhooks) and says in fixed words that Telegram is degraded; the
// private one fails with the error. Once Telegram is back the bot works:
// the payer gets the config, and a new user the menu.
func TestServeTelegramOutageAtStartup(t *testing.T) {
	for _, mode := range []struct {
		name, reason, failing string
		webhook               bool
	}{
		{"long polling", "not connected yet", "delete webhook", false},
		{"webhook", "webhook not set yet", "set webhook", true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			testTelegramOutage(t, mode.webhook, mode.reason, mode.failing)
		})
	}
}

func testTelegramOutage(t *testing.T, webhook bool, reason, failing string) {
	ctx := context.Background()
	tg := tgtest.New(outageBotToken)
	defer tg.Close()
	cp := cryptopaytest.NewServer(outageCryptoToken)
	defer cp.Close()
	dbURL := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// A first run with Telegram up: the payer opens a Crypto Pay invoice.
	env := serveEnv(t, dbURL, tg.URL(), cp)
	if webhook {
		env["TELEGRAM_WEBHOOK_URL"] = "http://" + env["HTTP_ADDR"] + "/telegram/webhook"
	}
	stop := startWgbot(t, env)
	waitUntil(t, 20*time.Second, "the first run to be ready", func() bool {
		code, _ := fetch("http://" + env["HTTP_ADDR"] + "/readyz")
		return code == http.StatusOK
	})
	payer := tgtest.User{ID: 700, FirstName: "Payer", LanguageCode: "en"}
	tg.SendText(payer, "/start")
	waitForButton(t, tg, payer, "buy")
	pressButton(t, tg, payer, "buy")
	waitForButton(t, tg, payer, "buy:plan:month")
	pressButton(t, tg, payer, "buy:plan:month")
	waitForButton(t, tg, payer, "buy:pay:cryptopay:month")
	pressButton(t, tg, payer, "buy:pay:cryptopay:month")
	waitUntil(t, 10*time.Second, "a Crypto Pay invoice", func() bool { return len(cp.Invoices()) == 1 })
	stop()

	// The second run starts in a Telegram outage.
	out := newOutage(t, tg.URL())
	env["TELEGRAM_API_URL"] = out.srv.URL
	public, private := "http://"+env["HTTP_ADDR"], "http://"+env["METRICS_ADDR"]
	startWgbot(t, env)
	waitUntil(t, 20*time.Second, "the webhook listener in the outage", func() bool {
		code, _ := fetch(public + "/healthz")
		return code == http.StatusOK
	})
	// The first attempt gives up after the sender's own retries.
	waitUntil(t, 20*time.Second, "the private /readyz to give the Bot API's error", func() bool {
		code, body := fetch(private + "/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"telegram":"`+reason+`: telegram: `+failing) &&
			strings.Contains(body, "Bad Gateway")
	})
	if code, body := fetch(public + "/readyz"); code != http.StatusOK || !strings.Contains(body, `"telegram":"`+reason+` (degraded)"`) ||
		!strings.Contains(body, `"status":"degraded"`) ||
		strings.Contains(body, "Bad Gateway") || strings.Contains(body, "502") || strings.Contains(body, failing) {
		t.Errorf("the published /readyz should be ready and say only %q (degraded) for Telegram: %d %s", reason, code, body)
	}

	inv := cp.Invoices()[0].InvoiceID
	if err := cp.Pay(inv); err != nil {
		t.Fatal(err)
	}
	if err := cp.Notify(ctx, public+"/webhooks/cryptopay", inv); err != nil {
		t.Fatalf("the Crypto Pay webhook in a Telegram outage: %v", err)
	}
	var credited int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE provider = 'cryptopay'`).Scan(&credited); err != nil {
		t.Fatal(err)
	}
	if credited != 1 {
		t.Fatalf("%d Crypto Pay payments recorded during the outage, want 1", credited)
	}
	if code, body := fetch(public + "/readyz"); code != http.StatusOK || !strings.Contains(body, "(degraded)") {
		t.Fatalf("published /readyz = %d %s with Telegram still down, want 200 degraded", code, body)
	}
	if code, _ := fetch(private + "/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("private /readyz = %d with Telegram still down", code)
	}

	out.down.Store(false)
	waitUntil(t, 30*time.Second, "/readyz after Telegram is back", func() bool {
		pcode, pbody := fetch(public + "/readyz")
		code, _ := fetch(private + "/readyz")
		return pcode == http.StatusOK && strings.Contains(pbody, `"telegram":"ok"`) && code == http.StatusOK
	})
	waitUntil(t, 30*time.Second, "the payer's config, paid during the outage", func() bool { return docs(tg, payer.ID) == 1 })
	newcomer := tgtest.User{ID: 701, FirstName: "New", LanguageCode: "en"}
	tg.SendText(newcomer, "/start")
	waitForButton(t, tg, newcomer, "trial")
}

// The write timeout outlasts the slowest webhook: the body, YooKassa's
// fetch-back, then WG_RECONCILE_WAIT; it follows that setting.
func TestHTTPWriteTimeoutCoversTheSlowestWebhook(t *testing.T) {
	for _, wait := range []time.Duration{0, 5 * time.Second, 2 * time.Minute} {
		l := httpLimits(config.Settings{WGReconcileWait: wait, HTTPMaxConns: 7})
		if need := httpserver.DefaultReadTimeout + yookassa.Timeout + wait; l.WriteTimeout <= need {
			t.Errorf("WG_RECONCILE_WAIT=%v: write timeout %v, want more than %v", wait, l.WriteTimeout, need)
		}
		if l.MaxConns != 7 {
			t.Errorf("MaxConns %d, want HTTP_MAX_CONNECTIONS", l.MaxConns)
		}
	}
}

// Which one listener counts as private: loopback addresses only; all
// interfaces, a real address or a non-TCP address do not.
func TestLoopbackListener(t *testing.T) {
	for addr, want := range map[net.Addr]bool{
		&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}:   true,
		&net.TCPAddr{IP: net.ParseIP("127.0.0.53"), Port: 8080}:  true,
		&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}:           true,
		&net.TCPAddr{IP: net.IPv4zero, Port: 8080}:               false,
		&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}:        false,
		&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 8080}: false,
		&net.UnixAddr{Name: "/run/wgbot.sock", Net: "unix"}:      false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%v) = %v, want %v", addr, got, want)
		}
	}
}
