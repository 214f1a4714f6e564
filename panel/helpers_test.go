package panel_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wgbot"
	"wgbot/panel"
	"wgbot/postgres/pgtest"
	"wgbot/service/servicetest"
	"wgbot/telegram"
	"wgbot/telegram/tgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	testToken = "424242:panel-test"
	adminID   = 5000001
)

// env is the panel on a real stack: PostgreSQL, the service, the bot
// against the emulated Bot API, and the panel behind an HTTP server.
type env struct {
	t     testing.TB
	ctx   context.Context
	stack *servicetest.Stack
	tg    *tgtest.Server
	bot   *telegram.Bot
	links *panel.Links
	srv   *httptest.Server
	skew  atomic.Int64 // added to the panel's clock, nanoseconds
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvJobs(t, false)
}

// newEnvJobs is newEnv whose store queues follow-up jobs (broadcasts need
// them); no worker runs them.
func newEnvJobs(t testing.TB, jobs bool) *env {
	t.Helper()
	return newEnvCheckouts(t, jobs, nil)
}

// newEnvCheckouts is newEnvJobs with the bot offering the payment
// providers checkouts makes on the env's service (nil: Stars only).
func newEnvCheckouts(t testing.TB, jobs bool, checkouts func(*env, *slog.Logger) []telegram.Checkout) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.stack = servicetest.New(t, servicetest.Options{Log: log, Jobs: jobs})
	e.tg = tgtest.New(testToken)
	t.Cleanup(e.tg.Close)

	var handler http.Handler = http.NotFoundHandler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	var err error
	e.links, err = panel.NewLinks(e.stack.Store, panel.LinkConfig{BaseURL: e.srv.URL, AdminIDs: []int64{adminID},
		Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	var cos []telegram.Checkout
	if checkouts != nil {
		cos = checkouts(e, log)
	}
	e.bot, err = telegram.New(e.stack.Service, telegram.Config{Token: testToken, APIURL: e.tg.URL(), AdminIDs: []int64{adminID},
		PollTimeout: 2 * time.Second, RetryBackoff: 50 * time.Millisecond, ShutdownTimeout: 5 * time.Second, UserBurst: 1000,
		Broadcasts: e.stack.Store, PanelLinks: e.links, Audit: e.stack.Store}, cos, log)
	if err != nil {
		t.Fatal(err)
	}
	p, err := panel.New(e.links, e.stack.Store, e.stack.Service, e.bot, log)
	if err != nil {
		t.Fatal(err)
	}
	handler = p.Handler()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bot.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
		if t.Failed() {
			t.Logf("log:\n%s", e.logs.String())
		}
	})
	return e
}

// client is a browser without scripts: a cookie jar, and the Origin a
// browser sends with a form.
type client struct {
	e      *env
	http   *http.Client
	origin string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, origin: e.srv.URL, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) get(path string) (int, string) {
	c.e.t.Helper()
	resp, err := c.http.Get(c.e.srv.URL + path)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post sends a form as the panel's own page would (with Origin), or from
// elsewhere when c.origin says so.
func (c *client) post(path string, form url.Values) *http.Response {
	c.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body)) // read, so the connection is free; still there to look at
	return resp
}

// tokenOf is the token of a sign-in link.
func tokenOf(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("link %q has no token", link)
	}
	return u.Query().Get("token")
}

// signIn opens a new link as the admin would and returns the signed-in
// client and the page's CSRF token.
func (e *env) signIn() (*client, string) {
	e.t.Helper()
	link, err := e.links.PanelLink(e.ctx, adminID)
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.client()
	if resp := c.post("/panel/login", url.Values{"token": {tokenOf(e.t, link)}}); resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign-in answered %d", resp.StatusCode)
	}
	status, body := c.get("/panel/users")
	if status != http.StatusOK {
		e.t.Fatalf("after sign-in /panel/users answered %d", status)
	}
	return c, csrfOf(e.t, body)
}

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfPattern.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return m[1]
}

// register makes a user as the bot's /start would.
func (e *env) register(telegramID int64, username, name string) wgbot.User {
	e.t.Helper()
	u, err := e.stack.Service.Register(e.ctx, wgbot.User{TelegramID: telegramID, Username: username, FirstName: name, Language: "en"}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// buyStars pays for the month plan in Stars through the bot, as a user
// would, and waits until the payment is credited.
func (e *env) buyStars(u wgbot.User, chargeID string) {
	e.t.Helper()
	o, err := e.stack.Service.CreateOrder(e.ctx, u, "month", "stars", "XTR")
	if err != nil {
		e.t.Fatal(err)
	}
	e.tg.SuccessfulPayment(tgtest.User{ID: u.TelegramID, FirstName: u.FirstName}, "XTR", int(o.Amount), strconv.FormatInt(o.ID, 10), chargeID)
	e.waitFor("payment "+chargeID+" credited", func() bool {
		var n int
		e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM payments WHERE provider_payment_id = $1`, chargeID).Scan(&n)
		return n == 1
	})
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) expiry(u wgbot.User) time.Time {
	e.t.Helper()
	var t time.Time
	if err := e.stack.Pool.QueryRow(e.ctx, `SELECT max(expires_at) FROM subscriptions WHERE user_id = $1 AND status = 'active'`, u.ID).Scan(&t); err != nil {
		e.t.Fatal(err)
	}
	return t
}

func sha(t *testing.T, token string) []byte {
	t.Helper()
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func tgUser(id int64) tgtest.User {
	return tgtest.User{ID: id, FirstName: "Admin", LanguageCode: "en"}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
