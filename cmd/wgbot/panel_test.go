package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"wgbot/postgres/pgtest"
	"wgbot/telegram/tgtest"
)

// The panel of a real `wgbot serve` with PANEL_ADDR apart from HTTP_ADDR:
// served only there, never on the webhook listener; `wgbot panel-link`
// gives an admin a link that signs in once, and nobody else a link.
func TestServePanelListener(t *testing.T) {
	tg := tgtest.New(outageBotToken)
	defer tg.Close()
	env := serveEnv(t, pgtest.URL(t), tg.URL(), nil)
	env["PANEL_ADDR"] = freeAddr(t)
	env["PANEL_URL"] = "http://" + env["PANEL_ADDR"]
	env["ADMIN_IDS"] = "4242"
	public, panel := "http://"+env["HTTP_ADDR"], env["PANEL_URL"]
	stop := startWgbot(t, env)
	defer stop()
	waitUntil(t, 20*time.Second, "wgbot to be ready", func() bool {
		code, _ := fetch(public + "/readyz")
		return code == http.StatusOK
	})
	if code, _ := fetch(panel + "/panel/login?token=x"); code != http.StatusOK {
		t.Errorf("PANEL_ADDR /panel/login = %d", code)
	}
	if code, _ := fetch(public + "/panel/login?token=x"); code != http.StatusNotFound {
		t.Errorf("HTTP_ADDR /panel/login = %d, want 404: the panel stays off the webhook listener", code)
	}

	out, err := runWgbot(env, "panel-link", "--admin", "4242").CombinedOutput()
	if err != nil {
		t.Fatalf("panel-link: %v\n%s", err, out)
	}
	link := strings.Fields(string(out))[0]
	if !strings.HasPrefix(link, panel+"/panel/login?token=") {
		t.Fatalf("panel-link printed %q", out)
	}
	u, _ := url.Parse(link)
	signIn := func() int {
		req, _ := http.NewRequest(http.MethodPost, panel+"/panel/login", strings.NewReader(url.Values{"token": {u.Query().Get("token")}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", panel)
		client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := signIn(); code != http.StatusSeeOther {
		t.Errorf("first use of the link: %d", code)
	}
	if code := signIn(); code != http.StatusForbidden {
		t.Errorf("second use of the link: %d", code)
	}
	if out, err := runWgbot(env, "panel-link", "--admin", "7").CombinedOutput(); err == nil || strings.Contains(string(out), "/panel/login") {
		t.Errorf("panel-link for a non-admin: %v\n%s", err, out)
	}

	// The operator commands are in the audit log too.
	for _, args := range [][]string{{"issue", "--telegram-id", "515", "--days", "3", "--out", filepath.Join(t.TempDir(), "c.conf")},
		{"grant", "515", "4"}, {"revoke", "515"}} {
		if out, err := runWgbot(env, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	conn, err := pgx.Connect(context.Background(), env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var got string
	conn.QueryRow(context.Background(), `SELECT string_agg(source || ':' || action || ':' || target_id, ' ' ORDER BY id) FROM audit_log WHERE source = 'cli'`).Scan(&got)
	if want := "cli:issue:515 cli:grant:515 cli:revoke:515"; got != want {
		t.Errorf("audit log %q, want %q", got, want)
	}
}

// The sandbox serves the panel on its own address: /panel in the admin's
// chat gives a link that signs in.
func TestSandboxPanel(t *testing.T) {
	url, _ := startSandbox(t)
	sendAs(t, url, sandboxAdmin, "/panel")
	var link string
	for _, text := range waitBotReplies(t, url, sandboxAdmin, 1) {
		if i := strings.Index(text, url+"panel/login?token="); i >= 0 {
			link = strings.Fields(text[i:])[0]
		}
	}
	if link == "" {
		t.Fatal("no panel link in the admin's chat")
	}
	if code, body := fetch(link); code != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("the link's page: %d", code)
	}
	if code, _ := fetch(url + "panel/"); code != http.StatusUnauthorized {
		t.Fatalf("the panel without a session: %d", code)
	}
}
