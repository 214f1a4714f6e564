package panel_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"wgbot"
)

func TestServerDrainAndEnable(t *testing.T) {
	e := newEnv(t)
	c, csrf := e.signIn()
	state := func() (s string) {
		e.stack.Pool.QueryRow(e.ctx, `SELECT state FROM servers WHERE name = 'main'`).Scan(&s)
		return s
	}
	for _, step := range []struct{ action, want string }{{"drain", "draining"}, {"enable", "active"}} {
		if code := c.post("/panel/servers/main/"+step.action, url.Values{"csrf": {csrf}}).StatusCode; code != http.StatusSeeOther || state() != step.want {
			t.Fatalf("%s answered %d, state %s", step.action, code, state())
		}
	}
	if code := c.post("/panel/servers/nowhere/drain", url.Values{"csrf": {csrf}}).StatusCode; code != http.StatusConflict {
		t.Fatalf("draining an unknown server answered %d", code)
	}
	if code := c.post("/panel/servers/main/drain", url.Values{}).StatusCode; code != http.StatusForbidden || state() != "active" {
		t.Fatalf("a drain without the CSRF token answered %d, state %s", code, state())
	}
	var n int
	e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM audit_log WHERE action IN ('drain', 'enable') AND after->>'server' = 'main'`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d server changes in the audit log, want 2", n)
	}
}

// The panel speaks the admin's language in the bot.
func TestRussianAdmin(t *testing.T) {
	e := newEnv(t)
	if _, err := e.stack.Service.Register(e.ctx, wgbot.User{TelegramID: adminID, FirstName: "Админ", Language: "ru"}, ""); err != nil {
		t.Fatal(err)
	}
	c, _ := e.signIn()
	for path, want := range map[string]string{"/panel/": "Выручка в день", "/panel/users": "Пользователи", "/panel/payments": "Платежи", "/panel/servers": "Отставание ревизии", "/panel/audit": "Журнал действий"} {
		status, body := c.get(path)
		if status != http.StatusOK || !strings.Contains(body, want) || !strings.Contains(body, `<html lang="ru">`) {
			t.Errorf("%s: %d, no %q", path, status, want)
		}
	}
}

// The bot's admin commands are in the same audit log, as from the bot.
func TestBotActionsAudited(t *testing.T) {
	e := newEnv(t)
	u := e.register(6000004, "dan", "Dan")
	e.tg.SendText(tgUser(adminID), "/grant 6000004 5")
	if _, err := e.tg.WaitMessages(e.ctx, adminID, 1); err != nil {
		t.Fatal(err)
	}
	// Banned elsewhere (no admin's action: no row); the bot's unban is
	// one, and a second unban changes nothing, so records nothing.
	if err := e.stack.Store.SetBanned(e.ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		e.tg.SendText(tgUser(adminID), "/unban @dan")
		if _, err := e.tg.WaitMessages(e.ctx, adminID, 2+i); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	rows, _ := e.stack.Pool.Query(e.ctx, `SELECT source || ':' || action || ':' || target_id || ':' || admin_id FROM audit_log ORDER BY id`)
	for rows.Next() {
		var s string
		rows.Scan(&s)
		got = append(got, s)
	}
	want := "bot:grant:6000004:5000001 bot:unban:6000004:5000001"
	if strings.Join(got, " ") != want {
		t.Fatalf("audit log %q, want %q", strings.Join(got, " "), want)
	}
	c, _ := e.signIn()
	if _, body := c.get("/panel/audit?user=" + itoa(u.TelegramID)); strings.Count(body, "data-action=") != 2 {
		t.Fatalf("the audit page shows %d of the bot's entries", strings.Count(body, "data-action="))
	}
}

// A broadcast from the panel is queued once, however often its form is
// sent.
func TestBroadcastQueuedOnce(t *testing.T) {
	e := newEnvJobs(t, true)
	for i := range 3 {
		e.register(int64(6200000+i), "", "B")
	}
	c, csrf := e.signIn()
	_, page := c.get("/panel/broadcast")
	key := regexp.MustCompile(`name="key" value="(\d+)"`).FindStringSubmatch(page)
	if key == nil {
		t.Fatalf("no key on the form:\n%s", page)
	}
	form := url.Values{"csrf": {csrf}, "key": {key[1]}, "text": {"Maintenance tonight"}, "audience": {string(wgbot.AudienceAll)}}
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); c.post("/panel/broadcast", form) }()
	}
	wg.Wait()
	var broadcasts, recipients int
	e.stack.Pool.QueryRow(e.ctx, `SELECT count(*), COALESCE(sum(recipients), 0) FROM broadcasts`).Scan(&broadcasts, &recipients)
	if broadcasts != 1 || recipients != 3 {
		t.Fatalf("%d broadcasts to %d recipients, want 1 to 3", broadcasts, recipients)
	}
	for name, bad := range map[string]url.Values{
		"no text":    {"csrf": {csrf}, "key": {"1099511627999"}, "text": {" "}, "audience": {"all"}},
		"bad key":    {"csrf": {csrf}, "key": {"12"}, "text": {"x"}, "audience": {"all"}},
		"bad target": {"csrf": {csrf}, "key": {"1099511627998"}, "text": {"x"}, "audience": {"martians"}},
	} {
		if code := c.post("/panel/broadcast", bad).StatusCode; code != http.StatusBadRequest && code != http.StatusConflict {
			t.Errorf("%s answered %d", name, code)
		}
	}
	e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM broadcasts`).Scan(&broadcasts)
	if broadcasts != 1 {
		t.Fatalf("bad forms queued broadcasts: %d", broadcasts)
	}
}
