package panel_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// panelCookies are the cookies the browser holds for the panel.
func panelCookies(ctx context.Context, panelURL string) ([]*network.Cookie, error) {
	return chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{panelURL + "/panel/"}})
		return res.Cookies, err
	})
}

// TestNonAdminLinkInBrowser: a sign-in link bound to someone who is not
// an admin (issued before they were removed from ADMIN_IDS) opens the
// sign-in page, and pressing its button is refused: the page says so, no
// session cookie is set and no session exists.
func TestNonAdminLinkInBrowser(t *testing.T) {
	e := newEnv(t)
	const token = "not-an-admins-token-0123456789abcdef"
	now := time.Now()
	if err := e.stack.Store.CreatePanelLink(e.ctx, sha(t, token), 6000099, now.Add(5*time.Minute), now, 12*time.Hour); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "refusal")
	b.do("open the link", chromedp.Navigate(e.srv.URL+"/panel/login?token="+token), chromedp.WaitVisible(chromedp.CSS("#signin")))
	b.do("press sign in", chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#message")))
	if got := b.text("#message"); !strings.Contains(got, "not an admin's") {
		t.Errorf("the refusal says %q", got)
	}
	b.shot("non-admin-link")
	cookies, err := panelCookies(b.ctx, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		t.Errorf("the browser holds cookie %s for the panel", c.Name)
	}
	var sessions int
	e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM panel_sessions`).Scan(&sessions)
	if sessions != 0 {
		t.Errorf("%d sessions after a refused sign-in", sessions)
	}
	b.do("open the dashboard", chromedp.Navigate(e.srv.URL+"/panel/"), chromedp.WaitVisible(chromedp.CSS("#message")))
	if got := b.text("#message"); !strings.Contains(got, "not signed in") {
		t.Errorf("the dashboard without a session says %q", got)
	}
}

// TestUsedAndExpiredLinksInBrowser: in Chromium, a sign-in link works
// once; the same link opened again (in another browser, with no cookie)
// and a link past its 5 minutes are refused on the page, with no session
// for either.
func TestUsedAndExpiredLinksInBrowser(t *testing.T) {
	e := newEnv(t)
	link, err := e.links.PanelLink(e.ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	first := newBrowser(t, "links")
	first.do("sign in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("figure.chartbox")))
	sessions := func() (n int) {
		e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM panel_sessions`).Scan(&n)
		return n
	}
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions after signing in", n)
	}
	refused := func(b *browser, what, link string) {
		t.Helper()
		b.do("open "+what, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#signin")))
		b.do("press sign in with "+what, chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#message")))
		if got := b.text("#message"); !strings.Contains(got, "used, expired") {
			t.Errorf("%s: the page says %q", what, got)
		}
		b.shot(strings.ReplaceAll(what, " ", "-"))
		if cookies, err := panelCookies(b.ctx, e.srv.URL); err != nil || len(cookies) != 0 {
			t.Errorf("%s: the browser holds %d panel cookies (%v)", what, len(cookies), err)
		}
	}
	second := newBrowser(t, "links-again")
	refused(second, "the used link", link)

	old, err := e.links.PanelLink(e.ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	e.skew.Store(int64(5*time.Minute + time.Second))
	defer e.skew.Store(0)
	refused(newBrowser(t, "links-expired"), "an expired link", old)
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions after the refusals, want the first one only", n)
	}
}

// attackerPage serves, from its own address, a page whose form posts
// itself to the panel as soon as it loads, with no CSRF token.
func attackerPage(t *testing.T, host, action string, fields map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	var inputs strings.Builder
	for k, v := range fields {
		fmt.Fprintf(&inputs, `<input type="hidden" name="%s" value="%s">`, k, v)
	}
	page := `<!doctype html><title>Win a prize</title><form id="f" method="post" action="` + action + `">` + inputs.String() +
		`</form><script>document.getElementById('f').submit()</script>`
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCrossSitePostInBrowser: while the browser holds an admin's session,
// pages of other origins post the panel's ban and grant forms without a
// CSRF token. From the same site on another port the session cookie goes
// along and the panel refuses the foreign Origin; from another site
// (127.0.0.2) SameSite=Strict keeps the cookie back and the panel sees
// nobody signed in. Either way the browser shows a refusal and the user is
// neither banned nor granted anything.
func TestCrossSitePostInBrowser(t *testing.T) {
	e := newEnv(t)
	u := e.register(6000010, "vic", "Vic")
	e.buyStars(u, "stxVIC-1")
	var subID int64
	e.stack.Pool.QueryRow(e.ctx, `SELECT id FROM subscriptions WHERE user_id = $1 AND status = 'active'`, u.ID).Scan(&subID)
	expires := e.expiry(u)

	b := newBrowser(t, "crosssite")
	link, err := e.links.PanelLink(e.ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	b.do("sign in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#signin")),
		chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("figure.chartbox")))
	if cookies, err := panelCookies(b.ctx, e.srv.URL); err != nil || len(cookies) != 1 {
		t.Fatalf("signed in with %d cookies (%v)", len(cookies), err)
	}

	target := fmt.Sprintf("%s/panel/users/%d/", e.srv.URL, u.TelegramID)
	for _, c := range []struct {
		name, host, action string
		fields             map[string]string
		want               string
	}{
		{"ban from the same site", "127.0.0.1", "ban", map[string]string{"sub": itoa(subID)}, "did not come from the panel"},
		{"grant from the same site", "127.0.0.1", "grant", map[string]string{"days": "30", "form": strings.Repeat("e", 32)}, "did not come from the panel"},
		{"ban from another site", "127.0.0.2", "ban", map[string]string{"sub": itoa(subID)}, "not signed in"},
	} {
		evil := attackerPage(t, c.host, target+c.action, c.fields)
		b.do(c.name, chromedp.Navigate(evil), chromedp.WaitVisible(chromedp.CSS("#message")))
		if got := b.text("#message"); !strings.Contains(got, c.want) {
			t.Errorf("%s: the browser shows %q, want a refusal saying %q", c.name, got, c.want)
		}
		b.shot(strings.ReplaceAll(c.name, " ", "-"))
	}

	var banned bool
	var audits int
	e.stack.Pool.QueryRow(e.ctx, `SELECT banned FROM users WHERE id = $1`, u.ID).Scan(&banned)
	e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM audit_log WHERE action <> 'sign_in'`).Scan(&audits)
	if banned || !e.expiry(u).Equal(expires) || audits != 0 {
		t.Fatalf("after the cross-site posts: banned %v, expiry %v (was %v), %d audit rows", banned, e.expiry(u), expires, audits)
	}
	// The session itself is untouched: the admin still works.
	b.do("the panel still works", chromedp.Navigate(target[:len(target)-1]), chromedp.WaitVisible(chromedp.CSS("#days")))
}
