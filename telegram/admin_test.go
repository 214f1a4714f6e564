package telegram

import (
	"reflect"
	"strings"
	"testing"

	"wgbot/telegram/tgtest"
)

// TestAdminCommandsHiddenFromUsers: each admin command from anyone else
// gets exactly what an unknown command gets.
func TestAdminCommandsHiddenFromUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(5001, "en")
	h.tg.SendText(u, "/nosuchcommand")
	unknown := h.waitMessages(u.ID, 1)[0]
	for i, cmd := range []string{"/stats", "/user 5001", "/grant 5001 30", "/revoke 5001", "/broadcast hi", "/refund stx1"} {
		h.tg.SendText(u, cmd)
		got := h.waitMessages(u.ID, i+2)[i+1]
		if got.Text != unknown.Text || !reflect.DeepEqual(got.Keyboard, unknown.Keyboard) || got.Method != unknown.Method {
			t.Errorf("%s from a user answered\n%s\nunknown command answered\n%s", cmd, dump([]tgtest.Message{got}), dump([]tgtest.Message{unknown}))
		}
	}
	h.idle()
	var subs int
	h.queryRow(`SELECT count(*) FROM subscriptions`, nil, &subs)
	if subs != 0 || len(h.messages(u.ID)) != 7 {
		t.Errorf("user's admin commands had effects: %d subscriptions, %d messages", subs, len(h.messages(u.ID)))
	}
}

// TestAdminCommands: /stats, /user, /grant and /revoke for an admin.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	admin, u := user(adminID, "en"), user(5101, "en")
	h.startTrial(u)
	n := 0
	ask := func(cmd string) string {
		t.Helper()
		h.tg.SendText(admin, cmd)
		n++
		return h.waitMessages(adminID, n)[n-1].Text
	}
	if got := ask("/stats"); !strings.HasPrefix(got, "Users: 2\nActive subscriptions: 1\nTrials: 1\nActive devices: 1\nRevenue:\nnone yet") {
		t.Errorf("/stats = %q", got)
	}
	if got := ask("/user @user5101"); !strings.HasPrefix(got, "User 5101 (@user5101, User5101)") || !strings.Contains(got, "plan free trial") {
		t.Errorf("/user = %q", got)
	}
	if got := ask("/user 5101"); !strings.HasPrefix(got, "User 5101 ") {
		t.Errorf("/user by id = %q", got)
	}
	if got := ask("/user @nobody"); got != text(langEN, mAdminNoUser) {
		t.Errorf("/user of nobody = %q", got)
	}
	for _, bad := range []string{"/grant", "/grant 5101", "/grant 5101 x", "/user", "/refund", "/broadcast"} {
		if got := ask(bad); got != text(langEN, mAdminUsage) {
			t.Errorf("%s = %q, want usage", bad, got)
		}
	}
	if got := ask("/grant 5101 0"); !strings.HasPrefix(got, "Failed: days must be from 1 to 3650") {
		t.Errorf("/grant 0 days = %q", got)
	}
	before := len(h.messages(u.ID))
	if got := ask("/grant 5101 30"); !strings.HasPrefix(got, "Granted 30 days to 5101; valid until ") {
		t.Errorf("/grant = %q", got)
	}
	if told := h.waitMessages(u.ID, before+1)[before].Text; !strings.HasPrefix(told, "You received 30 days of VPN access") {
		t.Errorf("granted user told %q", told)
	}
	if got := ask("/revoke @user5101"); got != text(langEN, mAdminRevoked, 5101) {
		t.Errorf("/revoke = %q", got)
	}
	var status string
	h.queryRow(`SELECT status FROM subscriptions`, nil, &status)
	if status != "revoked" {
		t.Errorf("subscription %s after /revoke", status)
	}
	if got := ask("/revoke 5101"); !strings.HasPrefix(got, "Failed: ") {
		t.Errorf("second /revoke = %q", got)
	}
}
