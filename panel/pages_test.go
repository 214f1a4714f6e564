package panel_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"wgbot/postgres"

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
	for path, want := range map[string]string{"/panel/": "Выручка в день", "/panel/users": "Пользователи", "/panel/payments": "Платежи", "/panel/servers": "Отставание ревизии", "/panel/audit": "Журнал действий", "/panel/promos": "Промокоды"} {
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
	// The page shows its progress (no worker sends here: the outcomes are
	// recorded as the chunk job would) until every message is sent.
	var id int64
	e.stack.Pool.QueryRow(e.ctx, `SELECT id FROM broadcasts`).Scan(&id)
	progress := func() string {
		t.Helper()
		_, page := c.get("/panel/broadcast")
		return regexp.MustCompile(`(?s)<tr data-broadcast="\d+".*?</tr>`).FindString(page)
	}
	if row := progress(); !strings.Contains(row, "Maintenance tonight") || !strings.Contains(row, "<td>3</td><td>0</td><td>0</td><td>0</td><td>3</td><td>sending…</td>") {
		t.Fatalf("the queued broadcast's row: %s", row)
	}
	for i, outcome := range []postgres.BroadcastOutcome{postgres.BroadcastSent, postgres.BroadcastBlocked, postgres.BroadcastSent} {
		if err := e.stack.Store.RecordBroadcastSend(e.ctx, id, int64(6200000+i), outcome); err != nil {
			t.Fatal(err)
		}
	}
	if row := progress(); !strings.Contains(row, `data-pending="0"`) || !strings.Contains(row, "<td>3</td><td>2</td><td>1</td><td>0</td><td>0</td>") || strings.Contains(row, "sending") {
		t.Fatalf("the sent broadcast's row: %s", row)
	}
}

// TestPromoCodesPage: the panel creates, lists and disables promo codes as
// `wgbot promo` does, refuses a bad code with why and nothing made, and
// audits both changes.
func TestPromoCodesPage(t *testing.T) {
	e := newEnv(t)
	c, csrf := e.signIn()
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {csrf}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	codes := func() (n int) {
		e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM promo_codes`).Scan(&n)
		return n
	}
	if code := c.post("/panel/promos", form("code", "spring", "kind", "days", "value", "7", "uses", "10", "until", "2099-04-30")).StatusCode; code != http.StatusSeeOther {
		t.Fatalf("creating a code answered %d", code)
	}
	if code := c.post("/panel/promos", form("code", "half", "kind", "percent", "value", "150")).StatusCode; code != http.StatusConflict || codes() != 1 {
		t.Fatalf("a 150 %% discount answered %d, %d codes", code, codes())
	}
	resp := c.post("/panel/promos", form("code", "x", "kind", "days", "value", "7"))
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "3-32 characters") || !strings.Contains(string(body), `value="x"`) {
		t.Fatalf("a short code answered %d; the page should say why and keep the form:\n%s", resp.StatusCode, body)
	}
	if code := c.post("/panel/promos", url.Values{"code": {"nocsrf"}, "kind": {"days"}, "value": {"1"}}).StatusCode; code != http.StatusForbidden || codes() != 1 {
		t.Fatalf("a create without the CSRF token answered %d, %d codes", code, codes())
	}
	status, body := c.get("/panel/promos")
	if status != http.StatusOK || !strings.Contains(body, `data-code="SPRING"`) || !strings.Contains(body, "7 free days") || !strings.Contains(body, "0 / 10") {
		t.Fatalf("promo page %d:\n%s", status, body)
	}
	if code := c.post("/panel/promos/SPRING/disable", form()).StatusCode; code != http.StatusSeeOther {
		t.Fatalf("disabling answered %d", code)
	}
	var disabled bool
	e.stack.Pool.QueryRow(e.ctx, `SELECT disabled_at IS NOT NULL FROM promo_codes WHERE code = 'SPRING'`).Scan(&disabled)
	if !disabled {
		t.Fatal("the code is still enabled")
	}
	if code := c.post("/panel/promos/NOSUCH/disable", form()).StatusCode; code != http.StatusConflict {
		t.Fatalf("disabling an unknown code answered %d", code)
	}
	var n int
	e.stack.Pool.QueryRow(e.ctx, `SELECT count(*) FROM audit_log WHERE source = 'panel' AND action IN ('promo_add', 'promo_disable')`).Scan(&n)
	if n != 2 {
		t.Fatalf("%d promo changes in the audit log, want 2", n)
	}
}

// TestUserPageHistory: a user's page shows each device's server, last
// handshake and traffic this month, who invited the user and whom they
// invited, and the promo codes they redeemed.
func TestUserPageHistory(t *testing.T) {
	e := newEnv(t)
	referrer := e.register(6300001, "ref", "Rita")
	st, err := e.stack.Service.Referral(e.ctx, referrer)
	if err != nil {
		t.Fatal(err)
	}
	friend, err := e.stack.Service.Register(e.ctx, wgbot.User{TelegramID: 6300002, FirstName: "Fred", Language: "en"}, st.Code)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.stack.Service.IssueTrial(e.ctx, friend)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.stack.Service.CreatePromo(e.ctx, wgbot.Promo{Code: "WELCOME", Kind: wgbot.PromoDays, Value: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.stack.Service.RedeemPromo(e.ctx, friend, "welcome"); err != nil {
		t.Fatal(err)
	}
	seen := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if err := e.stack.Store.RecordUsage(e.ctx, e.stack.Server.ID, time.Now(), []postgres.PeerSample{
		{PublicKey: d.Peer.PublicKey, Received: 3 << 20, Transmitted: 7 << 20, LastHandshake: seen}}); err != nil {
		t.Fatal(err)
	}
	c, _ := e.signIn()
	_, page := c.get("/panel/users/6300002")
	devices := regexp.MustCompile(`(?s)<table id="devices">.*?</table>`).FindString(page)
	for _, want := range []string{d.Peer.IP.String(), e.stack.Server.Name, seen.Format("2006-01-02 15:04"), "10.00 MiB"} {
		if !strings.Contains(devices, want) {
			t.Errorf("the devices table has no %q:\n%s", want, devices)
		}
	}
	if refs := regexp.MustCompile(`(?s)<dl class="facts" id="referrals">.*?</dl>`).FindString(page); !strings.Contains(refs, `href="/panel/users/6300001"`) {
		t.Errorf("the invited user's page does not name who invited them:\n%s", refs)
	}
	if promos := regexp.MustCompile(`(?s)<table id="user-promos">.*?</table>`).FindString(page); !strings.Contains(promos, "WELCOME") || !strings.Contains(promos, "5 free days") || !strings.Contains(promos, "days given") {
		t.Errorf("the promo history:\n%s", promos)
	}
	_, page = c.get("/panel/users/6300001")
	if refs := regexp.MustCompile(`(?s)<dl class="facts" id="referrals">.*?</dl>`).FindString(page); !strings.Contains(refs, "<dd>1 (0 paid)</dd>") {
		t.Errorf("the referrer's page does not count the invited user:\n%s", refs)
	}
}
