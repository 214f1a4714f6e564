package panel_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"wgbot/panel"
)

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	link, err := e.links.PanelLink(e.ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, e.srv.URL+"/panel/login?token=") {
		t.Fatalf("link %q does not point at PANEL_URL", link)
	}
	token := tokenOf(t, link)

	t.Run("opening the link spends nothing", func(t *testing.T) {
		c := e.client()
		for range 3 { // a link preview, then the admin
			status, body := c.get("/panel/login?token=" + token)
			if status != http.StatusOK || !strings.Contains(body, `name="token" value="`+token+`"`) {
				t.Fatalf("login page: %d\n%s", status, body)
			}
		}
	})

	c := e.client()
	t.Run("a cross-site sign-in is refused", func(t *testing.T) {
		evil := e.client()
		evil.origin = "https://evil.example"
		if resp := evil.post("/panel/login", url.Values{"token": {token}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site sign-in answered %d", resp.StatusCode)
		}
	})
	t.Run("first use signs in", func(t *testing.T) {
		resp := c.post("/panel/login", url.Values{"token": {token}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/panel/" {
			t.Fatalf("sign-in answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		cookie := resp.Header.Get("Set-Cookie")
		for _, want := range []string{"wgbot_panel=", "HttpOnly", "SameSite=Strict", "Path=/panel/"} {
			if !strings.Contains(cookie, want) {
				t.Errorf("cookie %q lacks %s", cookie, want)
			}
		}
		if strings.Contains(cookie, "Secure") {
			t.Errorf("cookie %q is Secure on an http PANEL_URL", cookie)
		}
		if status, body := c.get("/panel/"); status != http.StatusOK || !strings.Contains(body, "<svg") {
			t.Fatalf("dashboard after sign-in: %d", status)
		}
	})
	t.Run("second use is refused", func(t *testing.T) {
		other := e.client()
		if resp := other.post("/panel/login", url.Values{"token": {token}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("second use answered %d", resp.StatusCode)
		}
		if status, _ := other.get("/panel/"); status != http.StatusUnauthorized {
			t.Fatalf("second user of the link sees the dashboard: %d", status)
		}
	})
	t.Run("an expired link is refused", func(t *testing.T) {
		old, err := e.links.PanelLink(e.ctx, adminID)
		if err != nil {
			t.Fatal(err)
		}
		e.skew.Store(int64(5*time.Minute + time.Second))
		defer e.skew.Store(0)
		if resp := e.client().post("/panel/login", url.Values{"token": {tokenOf(t, old)}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("expired link answered %d", resp.StatusCode)
		}
	})
	t.Run("a made-up token is refused", func(t *testing.T) {
		if resp := e.client().post("/panel/login", url.Values{"token": {"AAAA"}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("unknown token answered %d", resp.StatusCode)
		}
	})
	t.Run("only admins get links", func(t *testing.T) {
		if _, err := e.links.PanelLink(e.ctx, 777); err == nil {
			t.Fatal("a link for a non-admin")
		}
		// A link left from someone since removed from ADMIN_IDS opens nothing.
		if err := e.stack.Store.CreatePanelLink(e.ctx, sha(t, "former-admin"), 777, time.Now().Add(time.Minute), time.Now(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if resp := e.client().post("/panel/login", url.Values{"token": {"former-admin"}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a non-admin's link answered %d", resp.StatusCode)
		}
	})
	t.Run("the bot's /panel gives an admin a link and nobody else", func(t *testing.T) {
		e.tg.SendText(tgUser(adminID), "/panel")
		msgs, err := e.tg.WaitMessages(e.ctx, adminID, 1)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(msgs[0].Text, e.srv.URL+"/panel/login?token=")
		if i < 0 {
			t.Fatalf("/panel answered %q", msgs[0].Text)
		}
		botLink := strings.Fields(msgs[0].Text[i:])[0]
		if resp := e.client().post("/panel/login", url.Values{"token": {tokenOf(t, botLink)}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the bot's link answered %d", resp.StatusCode)
		}
		e.tg.SendText(tgUser(777), "/panel")
		got, err := e.tg.WaitMessages(e.ctx, 777, 1)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got[0].Text, "/panel/login") {
			t.Fatalf("a non-admin got a link: %q", got[0].Text)
		}
	})
}

func TestStateChangesNeedCSRFAndOrigin(t *testing.T) {
	e := newEnv(t)
	u := e.register(6000001, "ann", "Ann")
	e.buyStars(u, "stxCSRF-1")
	before := e.expiry(u)
	c, csrf := e.signIn()

	cases := []struct {
		name   string
		origin string
		form   url.Values
	}{
		{"cross-site with no token", "https://evil.example", url.Values{"days": {"5"}}},
		{"cross-site with the token", "https://evil.example", url.Values{"days": {"5"}, "csrf": {csrf}}},
		{"same origin, no token", "", url.Values{"days": {"5"}}},
		{"same origin, wrong token", "", url.Values{"days": {"5"}, "csrf": {"x" + csrf}}},
		{"no Origin nor Referer", "-", url.Values{"days": {"5"}, "csrf": {csrf}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.origin = e.srv.URL
			switch tc.origin {
			case "-":
				c.origin = ""
			case "":
			default:
				c.origin = tc.origin
			}
			if resp := c.post("/panel/users/6000001/grant", tc.form); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("answered %d", resp.StatusCode)
			}
			c.origin = e.srv.URL
			if resp := c.post("/panel/refund", url.Values{"provider": {"stars"}, "charge": {"stxCSRF-1"}}); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("refund without a token answered %d", resp.StatusCode)
			}
		})
	}
	if got := e.expiry(u); !got.Equal(before) {
		t.Fatalf("a refused request moved the expiry from %v to %v", before, got)
	}
	var status string
	e.stack.Pool.QueryRow(e.ctx, `SELECT status FROM payments WHERE provider_payment_id = 'stxCSRF-1'`).Scan(&status)
	if status != "credited" || e.tg.Refunded("stxCSRF-1") {
		t.Fatalf("a refused refund changed the payment: %s, refunded %v", status, e.tg.Refunded("stxCSRF-1"))
	}
	c.origin = e.srv.URL
	form := url.Values{"days": {"5"}, "csrf": {csrf}, "form": {strings.Repeat("f", 32)}}
	if resp := c.post("/panel/users/6000001/grant", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the panel's own grant answered %d", resp.StatusCode)
	}
	if got := e.expiry(u); !got.Equal(before.AddDate(0, 0, 5)) {
		t.Fatalf("grant moved the expiry from %v to %v, want 5 days", before, got)
	}
	// The same form sent again (a double click, a resent POST) grants
	// nothing more; a form without its key grants nothing.
	if resp := c.post("/panel/users/6000001/grant", form); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the grant form sent again answered %d", resp.StatusCode)
	}
	form.Del("form")
	if resp := c.post("/panel/users/6000001/grant", form); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a grant without its form key answered %d", resp.StatusCode)
	}
	if got := e.expiry(u); !got.Equal(before.AddDate(0, 0, 5)) {
		t.Fatalf("a repeated grant form moved the expiry again: %v, want %v", got, before.AddDate(0, 0, 5))
	}
}

func TestSessions(t *testing.T) {
	e := newEnv(t)
	t.Run("logout ends the session", func(t *testing.T) {
		c, csrf := e.signIn()
		if resp := c.post("/panel/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("logout answered %d", resp.StatusCode)
		}
		if status, _ := c.get("/panel/"); status != http.StatusUnauthorized {
			t.Fatalf("after logout the dashboard answered %d", status)
		}
	})
	t.Run("sessions end after 12 hours idle, not while used", func(t *testing.T) {
		c, _ := e.signIn()
		defer e.skew.Store(0)
		for _, h := range []time.Duration{11, 22, 33} { // each visit within 12 hours of the last
			e.skew.Store(int64(h * time.Hour))
			if status, _ := c.get("/panel/users"); status != http.StatusOK {
				t.Fatalf("after %dh of use: %d", h, status)
			}
		}
		e.skew.Store(int64(45*time.Hour + time.Minute))
		if status, _ := c.get("/panel/users"); status != http.StatusUnauthorized {
			t.Fatalf("after 12h idle: %d", status)
		}
	})
	t.Run("one link, many browsers at once: one session", func(t *testing.T) {
		link, err := e.links.PanelLink(e.ctx, adminID)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		codes := make(chan int, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes <- e.client().post("/panel/login", url.Values{"token": {tokenOf(t, link)}}).StatusCode
			}()
		}
		wg.Wait()
		close(codes)
		won := 0
		for c := range codes {
			if c == http.StatusSeeOther {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("%d browsers signed in with one link", won)
		}
	})
}

// TestSecureCookie: on an https PANEL_URL the cookie is Secure.
func TestSecureCookie(t *testing.T) {
	e := newEnv(t)
	links, err := panel.NewLinks(e.stack.Store, panel.LinkConfig{BaseURL: "https://panel.example", AdminIDs: []int64{adminID}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := panel.New(links, e.stack.Store, e.stack.Service, e.bot, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	link, err := links.PanelLink(e.ctx, adminID)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "https://panel.example/panel/login", strings.NewReader(url.Values{"token": {tokenOf(t, link)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://panel.example")
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || !strings.Contains(rec.Header().Get("Set-Cookie"), "Secure") {
		t.Fatalf("https sign-in: %d, cookie %q", rec.Code, rec.Header().Get("Set-Cookie"))
	}
}
