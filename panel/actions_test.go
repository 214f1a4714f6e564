package panel_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The user page's other actions: each is the bot's own step (the user is
// told once), each refused when stale or bad, and each in the audit log
// with the state before and after.
func TestUserActions(t *testing.T) {
	e := newEnv(t)
	u := e.register(6000003, "cara", "Cara")
	e.buyStars(u, "stxCARA-1")
	c, csrf := e.signIn()
	post := func(action string, form url.Values) int {
		t.Helper()
		form.Set("csrf", csrf)
		return c.post("/panel/users/6000003/"+action, form).StatusCode
	}
	liveSub := func() (id int64) {
		e.stack.Pool.QueryRow(e.ctx, `SELECT COALESCE(max(id), 0) FROM subscriptions WHERE user_id = $1 AND status = 'active'`, u.ID).Scan(&id)
		return id
	}
	banned := func() (b bool) {
		e.stack.Pool.QueryRow(e.ctx, `SELECT banned FROM users WHERE id = $1`, u.ID).Scan(&b)
		return b
	}
	told := func() int { return len(e.tg.Messages(u.TelegramID)) }
	sid := func(id int64) url.Values { return url.Values{"sub": {strings.TrimSpace(itoa(id))}} }

	first := liveSub()
	n := told()
	if code := post("revoke", sid(first)); code != http.StatusSeeOther {
		t.Fatalf("revoke answered %d", code)
	}
	if liveSub() != 0 || told() != n+1 {
		t.Fatalf("after revoke: live subscription %d, %d messages to the user (want 0, 1)", liveSub(), told()-n)
	}
	if code := post("revoke", sid(first)); code != http.StatusConflict || told() != n+1 {
		t.Fatalf("a second revoke answered %d and told the user %d times", code, told()-n)
	}

	// The user gets days again; a ban confirmed for the old subscription
	// ends nothing.
	if code := post("grant", url.Values{"days": {"3"}, "form": {strings.Repeat("3", 32)}}); code != http.StatusSeeOther {
		t.Fatalf("grant answered %d", code)
	}
	if code := post("ban", sid(first)); code != http.StatusConflict || banned() || liveSub() == 0 {
		t.Fatalf("a stale ban answered %d; banned %v, live %d", code, banned(), liveSub())
	}
	n = told()
	if code := post("ban", sid(liveSub())); code != http.StatusSeeOther || !banned() || liveSub() != 0 || told() != n+1 {
		t.Fatalf("ban answered %d; banned %v, live %d, told %d", code, banned(), liveSub(), told()-n)
	}
	if code := post("unban", url.Values{}); code != http.StatusSeeOther || banned() {
		t.Fatalf("unban answered %d; banned %v", code, banned())
	}

	n = told()
	if code := post("message", url.Values{"text": {"  "}}); code != http.StatusConflict || told() != n {
		t.Fatalf("an empty message answered %d", code)
	}
	if code := post("message", url.Values{"text": {"Hello from support <b>not markup</b>"}}); code != http.StatusSeeOther {
		t.Fatalf("message answered %d", code)
	}
	if msgs := e.tg.Messages(u.TelegramID); len(msgs) != n+1 || msgs[n].Text != "Hello from support <b>not markup</b>" {
		t.Fatalf("the user got %d messages, the last %q", len(msgs)-n, msgs[len(msgs)-1].Text)
	}

	// Every change is in the audit log, newest first, with before and after.
	rows, err := e.stack.Pool.Query(e.ctx, `SELECT action, admin_id, target_id, before IS NOT NULL, after IS NOT NULL FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var action string
		var admin, target int64
		var before, after bool
		rows.Scan(&action, &admin, &target, &before, &after)
		if admin != adminID {
			t.Errorf("%s recorded for admin %d", action, admin)
		}
		if action != "sign_in" && (target != u.TelegramID || !after) {
			t.Errorf("%s: target %d, after recorded %v", action, target, after)
		}
		got = append(got, action)
	}
	if want := "sign_in revoke grant ban unban message"; strings.Join(got, " ") != want {
		t.Fatalf("audit log %q, want %q", strings.Join(got, " "), want)
	}
	status, body := c.get("/panel/audit?user=6000003")
	if status != http.StatusOK || strings.Count(body, "data-action=") != 5 || !strings.Contains(body, "expires_at") {
		t.Fatalf("audit page: %d, %d entries", status, strings.Count(body, "data-action="))
	}
}
