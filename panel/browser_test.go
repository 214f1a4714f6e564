package panel_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"wgbot"
)

// seedHistory gives the dashboard something to draw: users who signed up
// over the last weeks, trials, Stars payments on several days, and a
// bought subscription that ended.
func (e *env) seedHistory() []wgbot.User {
	e.t.Helper()
	var users []wgbot.User
	for i := range 12 {
		u := e.register(int64(6100000+i), fmt.Sprintf("user%02d", i), fmt.Sprintf("User %d", i))
		users = append(users, u)
		back := time.Duration(i*6) * 24 * time.Hour
		if _, err := e.stack.Pool.Exec(e.ctx, `UPDATE users SET created_at = now() - $2::interval WHERE id = $1`, u.ID, back); err != nil {
			e.t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := e.stack.Service.IssueTrial(e.ctx, u); err != nil {
				e.t.Fatal(err)
			}
			e.exec(`UPDATE subscriptions SET created_at = now() - $2::interval, starts_at = now() - $2::interval WHERE user_id = $1`, u.ID, back)
		}
		if i%3 == 0 {
			charge := fmt.Sprintf("stxSEED-%d", i)
			e.buyStars(u, charge)
			e.exec(`UPDATE payments SET applied_at = now() - $2::interval WHERE provider_payment_id = $1`, charge, back/2)
		}
	}
	// One bought subscription ended two days ago: churn.
	e.exec(`UPDATE subscriptions SET status = 'expired', expires_at = now() - interval '2 days' WHERE user_id = $1`, users[9].ID)
	return users
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.stack.Pool.Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatal(err)
	}
}

// browser is headless Chromium on a test's panel, saving a screenshot of
// each step as an artifact (in WGBOT_ARTIFACTS, else a temporary
// directory).
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
	name      string // the screenshots' prefix
	step      int
}

func newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("Debian's chromium is needed for the browser test: run scripts/install-deps.sh (make deps)")
	}
	b := &browser{t: t, name: name, artifacts: os.Getenv("WGBOT_ARTIFACTS")}
	if b.artifacts == "" {
		b.artifacts = t.TempDir()
	} else if err := os.MkdirAll(b.artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1400),
	)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(browserCtx, 120*time.Second)
	t.Cleanup(cancel)
	b.ctx = ctx
	return b
}

func (b *browser) shot(name string) []byte {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.step++
	path := filepath.Join(b.artifacts, fmt.Sprintf("%s-%d-%s.png", b.name, b.step, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
	return png
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.shot("failed")
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) text(css string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.shot("failed")
		b.t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

func (b *browser) eval(js string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return n
}

// TestPanelInBrowser drives the panel in headless Chromium as an admin
// would: sign in with a link, read the dashboard, find a user, grant
// days, refund a payment with a double click.
func TestPanelInBrowser(t *testing.T) {
	e := newEnv(t)
	e.seedHistory()
	bob := e.register(6000002, "bob_vpn", "Bob")
	e.buyStars(bob, "stxBOB-1")
	e.buyStars(bob, "stxBOB-2")
	b := newBrowser(t, "panel")
	ctx, shot, do, text, eval := b.ctx, b.shot, b.do, b.text, b.eval

	// Sign in with a link from the bot's /panel.
	link, err := e.links.PanelLink(e.ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	do("open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#signin")))
	shot("signin")
	do("sign in", chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("figure.chartbox")))

	// Every chart is drawn, with bars where the seed put data.
	captions := text(".charts")
	for _, want := range []string{"Revenue per day, XTR", "Active subscriptions", "Sign-ups per day", "conversion by week", "Churn"} {
		if !strings.Contains(captions, want) {
			t.Errorf("dashboard has no chart %q:\n%s", want, captions)
		}
	}
	if n := eval(`document.querySelectorAll('figure.chartbox svg').length`); n != 5 {
		t.Errorf("%d charts, want 5", n)
	}
	if n := eval(`[...document.querySelectorAll('figure.chartbox svg')].filter(s => s.querySelectorAll('rect').length > 0).length`); n != 5 {
		t.Errorf("%d charts with bars, want 5", n)
	}
	if n := eval(`document.querySelectorAll('.tile').length`); n != 4 {
		t.Errorf("%d tiles, want now, today, 7 and 30 days", n)
	}
	dash := shot("dashboard")
	if os.Getenv("WGBOT_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "panel-dashboard.png"), dash, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A search by @username finds the user.
	do("search", chromedp.Click(chromedp.CSS(`nav a[href="/panel/users"]`)), chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "@bob"), chromedp.Click(chromedp.CSS("#search")),
		chromedp.WaitVisible(chromedp.CSS(`#users[data-query="@bob"] a[href="/panel/users/6000002"]`)))
	if n := eval(`document.querySelectorAll('#users tbody tr').length`); n != 1 {
		t.Errorf("@bob found %d rows, want 1", n)
	}
	shot("search")

	// A grant moves the expiry and the user hears it from the bot.
	before := e.expiry(bob)
	told := len(e.tg.Messages(bob.TelegramID))
	do("grant", chromedp.Click(chromedp.CSS(`#users a[href="/panel/users/6000002"]`)), chromedp.WaitVisible(chromedp.CSS("#days")),
		chromedp.SetValue(chromedp.CSS("#days"), "7"), chromedp.Click(chromedp.CSS("#grant")), chromedp.WaitVisible(chromedp.CSS("#flash")))
	if got := e.expiry(bob); !got.Equal(before.AddDate(0, 0, 7)) {
		t.Errorf("grant moved the expiry from %v to %v, want 7 days", before, got)
	}
	msgs, err := e.tg.WaitMessages(e.ctx, bob.TelegramID, told+1)
	if err != nil {
		t.Fatal(err)
	}
	if got := msgs[told].Text; !strings.Contains(got, "7 days") {
		t.Errorf("the user was told %q", got)
	}
	shot("granted")

	// A double-clicked refund is one refund: Stars back once, the ledger
	// once, the user told once.
	before = e.expiry(bob)
	told = len(e.tg.Messages(bob.TelegramID))
	do("refund", chromedp.DoubleClick(chromedp.CSS(`button.refund[data-charge="stxBOB-1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-charge="stxBOB-1"][data-status="refunded"]`)))
	if f := text("#flash"); !strings.Contains(f, "Refunded stxBOB-1") {
		t.Errorf("after the refund the page says %q", f)
	}
	checkRefundedOnce(t, e, "stxBOB-1")
	// The refund takes back the payment's 30 days once (to the second:
	// the unused part is measured at the refund), never twice.
	if back := before.Sub(e.expiry(bob)); back < 30*24*time.Hour-time.Minute || back > 30*24*time.Hour {
		t.Errorf("refund moved the expiry back %v, want 30 days", back)
	}
	shot("refunded")

	// The server holds too: two posts of the same refund at once, as from
	// two tabs (each form with its own one-time key), refund once.
	csrf, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('input[name=csrf]').value`))
	if err != nil {
		t.Fatal(err)
	}
	statuses, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](fmt.Sprintf(`Promise.all([1, 2].map(i => fetch('/panel/refund', {method: 'POST',
		body: new URLSearchParams({csrf: %q, form: String(i).repeat(32), provider: 'stars', charge: 'stxBOB-2', user: '6000002'})}).then(r => r.status)))`, csrf),
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("two posts of one refund answered %v", statuses)
	checkRefundedOnce(t, e, "stxBOB-2")
	if got := len(e.tg.Messages(bob.TelegramID)); got != told+2 {
		t.Errorf("the user got %d messages for two refunds, want 2", got-told)
	}

	// On a phone: the user page fits the width.
	do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(e.srv.URL+"/panel/users/6000002"), chromedp.WaitVisible(chromedp.CSS("#days")))
	if w := eval(`document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("on a phone the page is %d px wide", w)
	}
	shot("phone")
	do("promos on a phone", chromedp.Navigate(e.srv.URL+"/panel/promos"), chromedp.WaitVisible(chromedp.CSS("#promo-form")))
	if w := eval(`document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("on a phone the promo codes page is %d px wide", w)
	}
	shot("promos-phone")
}

// checkRefundedOnce: the payment is refunded, Telegram gave the Stars
// back, and the ledger holds one row for it.
func checkRefundedOnce(t *testing.T, e *env, charge string) {
	t.Helper()
	var rows int
	var status string
	if err := e.stack.Pool.QueryRow(e.ctx, `SELECT count(*), max(status) FROM payments WHERE provider_payment_id = $1`, charge).Scan(&rows, &status); err != nil {
		t.Fatal(err)
	}
	var audited int
	if err := e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM audit_log WHERE action = 'refund' AND after->>'payment' = $1`, charge).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != 1 {
		t.Errorf("%s: %d refunds in the audit log, want 1", charge, audited)
	}
	if rows != 1 || status != "refunded" || !e.tg.Refunded(charge) {
		t.Errorf("%s: %d ledger rows, status %s, Stars refunded %v; want 1, refunded, true", charge, rows, status, e.tg.Refunded(charge))
	}
}
