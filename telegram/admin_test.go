package telegram

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"wgbot"

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
	for i, cmd := range []string{"/stats", "/user 5001", "/grant 5001 30", "/revoke 5001", "/broadcast hi", "/refund stx1", "/ban 5001", "/unban 5001", "/admin"} {
		h.tg.SendText(u, cmd)
		got := h.waitMessages(u.ID, i+2)[i+1]
		name, _, _ := strings.Cut(cmd[1:], " ")
		if got.Text != strings.Replace(unknown.Text, "nosuchcommand", name, 1) || !reflect.DeepEqual(got.Keyboard, unknown.Keyboard) || got.Method != unknown.Method {
			t.Errorf("%s from a user answered\n%s\nunknown command answered\n%s", cmd, dump([]tgtest.Message{got}), dump([]tgtest.Message{unknown}))
		}
	}
	h.idle()
	var subs int
	h.queryRow(`SELECT count(*) FROM subscriptions`, nil, &subs)
	if subs != 0 || len(h.messages(u.ID)) != 10 {
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
	if got := ask("/stats"); !strings.Contains(got, "Users in total: 2\nLive subscriptions: 1 (of them live trials: 1)") || !strings.HasSuffix(got, "by provider:\n• none\n"+text(langEN, mStatsRevenueExtra, text(langEN, mAdminRevenueNone), 0, 0, 0)) {
		t.Errorf("/stats = %q", got)
	}
	if got := ask("/user @user5101"); !strings.HasPrefix(got, "User id 5101 (@user5101, User5101)") || !strings.Contains(got, "Subscriptions:\n• free trial, active ✅, ") {
		t.Errorf("/user = %q", got)
	}
	if got := ask("/user 5101"); !strings.HasPrefix(got, "User id 5101 ") {
		t.Errorf("/user by id = %q", got)
	}
	if got := ask("/user @nobody"); got != text(langEN, mAdminNoUser) {
		t.Errorf("/user of nobody = %q", got)
	}
	// A malformed command says what was wrong and how the command is
	// written, in the admin's language; never the whole command list.
	for _, lang := range languages() {
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, adminID)
		for _, tc := range []struct {
			cmd     string
			usage   msg
			problem msg
			arg     string
		}{
			{"/grant", mUsageGrant, mWrongNoUser, ""},
			{"/grant 5101", mUsageGrant, mWrongNoDays, ""},
			{"/grant 5101 abc", mUsageGrant, mWrongDays, "abc"},
			{"/grant 5101 30 40", mUsageGrant, mWrongTooMany, ""},
			{"/grant user5101 30", mUsageGrant, mWrongUser, "user5101"},
			{"/user", mUsageUser, mWrongNoUser, ""},
			{"/user -5", mUsageUser, mWrongUser, "-5"},
			{"/revoke 5101 5102", mUsageRevoke, mWrongTooMany, ""},
			{"/refund", mUsageRefund, mWrongNoCharge, ""},
			{"/refund a b", mUsageRefund, mWrongCharge, "a b"},
			{"/broadcast", mUsageBroadcast, mWrongNoText, ""},
		} {
			var problem string
			if tc.arg != "" {
				problem = text(lang, tc.problem, tc.arg)
			} else {
				problem = text(lang, tc.problem)
			}
			if got, want := ask(tc.cmd), text(lang, mAdminWrong, problem, text(lang, tc.usage)); got != want {
				t.Errorf("%s %s = %q, want %q", lang, tc.cmd, got, want)
			}
		}
		if got := ask("/admin"); got != text(lang, mAdminUsage) {
			t.Errorf("%s /admin = %q", lang, got)
		}
	}
	h.mustExec(`UPDATE users SET language = 'en' WHERE telegram_id = $1`, adminID)
	if got := ask("/grant 5101 0"); !strings.HasPrefix(got, "Failed: days must be from 1 to 3650") {
		t.Errorf("/grant 0 days = %q", got)
	}
	before := len(h.messages(u.ID))
	if got := ask("/grant 5101 30"); !strings.HasPrefix(got, "Granted 30 days to id 5101; valid until ") {
		t.Errorf("/grant = %q", got)
	}
	if told := h.waitMessages(u.ID, before+1)[before].Text; !strings.HasPrefix(told, "You received 30 days of VPN access") {
		t.Errorf("granted user told %q", told)
	}
	// /revoke asks first; Cancel changes nothing, Yes revokes and tells
	// the user, whose subscription screen then shows no future date.
	if got := ask("/revoke @user5101"); got != text(langEN, mAdminRevokeConfirm, 5101, "user5101") {
		t.Errorf("/revoke = %q", got)
	}
	h.press(admin, "adm:no")
	confirm := h.messages(adminID)[n-1]
	if confirm.Text != text(langEN, mAdminCancelled) {
		t.Errorf("Cancel made the question %q", confirm.Text)
	}
	ask("/revoke 5101")
	var status string
	h.queryRow(`SELECT status FROM subscriptions`, nil, &status)
	if status != "active" {
		t.Fatalf("subscription %s before the revoke was confirmed", status)
	}
	before = len(h.messages(u.ID))
	h.press(admin, "adm:rv:5101:"+strconv.FormatInt(h.liveSub(u.ID), 10))
	if got := h.messages(adminID)[n-1].Text; got != text(langEN, mAdminRevoked, 5101) {
		t.Errorf("confirmed /revoke = %q", got)
	}
	h.queryRow(`SELECT status FROM subscriptions`, nil, &status)
	if status != "revoked" {
		t.Errorf("subscription %s after /revoke", status)
	}
	if told := h.waitMessages(u.ID, before+1)[before].Text; told != text(langEN, mAccessRevoked, "@wgbot_support") {
		t.Errorf("revoked user told %q", told)
	}
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, before+2)
	h.press(u, "sub")
	screen := h.messages(u.ID)[before+1]
	if !strings.Contains(screen.Text, text(langEN, mSubStatus, text(langEN, mStatusRevoked))) || strings.Contains(screen.Text, lead(langEN, mValidUntil)) {
		t.Errorf("subscription screen after a revoke:\n%s", screen.Text)
	}
	ask("/revoke 5101")
	h.press(admin, "adm:rv:5101:0") // no live subscription to name
	if got := h.messages(adminID)[n-1].Text; !strings.HasPrefix(got, "Failed: ") {
		t.Errorf("second /revoke = %q", got)
	}
}

// TestAdminUser (issue 17, item 9): /user shows every subscription, every
// device with its address, creation and status, and every payment with
// the charge id /refund takes, in the admin's language.
func TestAdminUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	u := user(17701, "en")
	h.tg.SendText(u, "/start")
	h.waitMessages(u.ID, 1)
	h.payStars(u, "month", "stx-user-1")
	h.payStars(u, "month", "stx-user-2")
	admin := user(adminID, "ru")
	h.tg.SendText(admin, "/refund stx-user-2")
	h.waitMessages(adminID, 1)
	var ip, created string
	h.queryRow(`SELECT host(ip), to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM peers`, nil, &ip, &created)
	for i, lang := range languages() {
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, adminID)
		h.tg.SendText(admin, "/user 17701")
		got := h.waitMessages(adminID, 2+i)[1+i].Text
		for _, want := range []string{
			text(lang, mAdminUserDevice, "device-1", ip, created+" UTC", text(lang, mPeerActive)),
			lead(lang, mAdminUserPayments),
			"• stars stx-user-1: 150 ⭐ ",
			"• stars stx-user-2: 150 ⭐ ",
			"• " + map[string]string{langEN: "Month", langRU: "Месяц"}[lang] + ", " + text(lang, mStatusActive) + ", ",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%s /user lacks %q:\n%s", lang, want, got)
			}
		}
		refunded := strings.Split(text(lang, mAdminPaidRefunded), "%s")[1] // ", refunded "
		if strings.Count(got, lead(lang, mAdminPaid)) != 2 || strings.Count(got, refunded) != 1 {
			t.Errorf("%s /user: one payment credited, one refunded:\n%s", lang, got)
		}
	}
}

// TestAdminBan (issue 17, item 2): /ban asks first; Yes ends the user's
// access and tells them, in their language; a second Yes tells them
// nothing more; /unban lifts it. In both of the admin's languages.
func TestAdminBan(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	admin := user(adminID, "en")
	h.tg.SendText(admin, "/start")
	h.waitMessages(adminID, 1)
	for i, lang := range languages() {
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, adminID)
		other := map[string]string{langEN: langRU, langRU: langEN}[lang]
		u := user(int64(17961+i), other)
		id := strconv.FormatInt(u.ID, 10)
		h.startTrial(u)
		ask := func(cmd string) int {
			t.Helper()
			n := len(h.messages(adminID))
			h.tg.SendText(admin, cmd)
			h.waitMessages(adminID, n+1)
			return n
		}
		q := ask("/ban " + id)
		if got := h.messages(adminID)[q].Text; got != text(lang, mAdminBanConfirm, u.ID, u.Username) {
			t.Errorf("%s /ban = %q", lang, got)
		}
		before := len(h.messages(u.ID))
		h.press(admin, "adm:ban:"+id+":"+strconv.FormatInt(h.liveSub(u.ID), 10))
		if got := h.messages(adminID)[q].Text; got != text(lang, mAdminBanned, u.ID) {
			t.Errorf("%s confirmed /ban = %q", lang, got)
		}
		if told := h.waitMessages(u.ID, before+1)[before].Text; told != text(other, mBannedNotice, "@wgbot_support") {
			t.Errorf("%s: banned user told %q", lang, told)
		}
		var banned bool
		var status string
		h.queryRow(`SELECT u.banned, s.status FROM users u JOIN subscriptions s ON s.user_id = u.id WHERE u.telegram_id = $1`, []any{u.ID}, &banned, &status)
		if !banned || status != "revoked" {
			t.Errorf("%s: after /ban: banned %v, subscription %s", lang, banned, status)
		}
		// A second Yes, ban (another /ban's button) changes nothing and the
		// user is not told again.
		q = ask("/ban " + id)
		h.press(admin, "adm:ban:"+id+":0")
		if got := h.messages(adminID)[q].Text; got != text(lang, mAdminBanned, u.ID) {
			t.Errorf("%s: second confirmed /ban = %q", lang, got)
		}
		h.idle()
		if n := len(h.messages(u.ID)); n != before+1 {
			t.Errorf("%s: a second ban sent the user more:\n%s", lang, dump(h.messages(u.ID)[before:]))
		}
		// Bans at once (presses handled by several processes) take turns
		// on the user's row: one changes something, the rest nothing.
		h.mustExec(`UPDATE users SET banned = false WHERE telegram_id = $1`, u.ID)
		target := h.userOf(u.ID)
		var changed atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ok, err := h.svc.Ban(h.ctx, target, 0); err != nil {
					t.Error(err)
				} else if ok {
					changed.Add(1)
				}
			})
		}
		wg.Wait()
		if changed.Load() != 1 {
			t.Errorf("%d of 8 concurrent bans changed something, want 1", changed.Load())
		}
		q = ask("/unban @" + u.Username)
		if got := h.messages(adminID)[q].Text; got != text(lang, mAdminUnbanned, u.ID) {
			t.Errorf("%s /unban = %q", lang, got)
		}
		h.queryRow(`SELECT banned FROM users WHERE telegram_id = $1`, []any{u.ID}, &banned)
		if banned {
			t.Errorf("%s: still banned after /unban", lang)
		}
	}
}

// liveSub is the id of the user's live subscription, 0 if none.
func (h *harness) liveSub(telegramID int64) int64 {
	h.t.Helper()
	var id int64
	h.queryRow(`SELECT coalesce(max(s.id), 0) FROM subscriptions s JOIN users u ON u.id = s.user_id
		WHERE u.telegram_id = $1 AND s.status = 'active'`, []any{telegramID}, &id)
	return id
}

// TestOldConfirmButtons: a Yes under an old /revoke or /ban question names
// the subscription the admin was asked about. Pressed after the user
// bought a new one, it ends nothing, tells the user nothing, and the
// admin is told why.
func TestOldConfirmButtons(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	admin := user(adminID, "en")
	h.tg.SendText(admin, "/start")
	h.waitMessages(adminID, 1)
	for i, lang := range languages() {
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, adminID)
		for j, c := range []struct{ cmd, data string }{{"/revoke", "adm:rv"}, {"/ban", "adm:ban"}} {
			u := user(int64(17981+2*i+j), lang)
			h.startTrial(u)
			old := h.liveSub(u.ID)
			n := len(h.messages(adminID))
			h.tg.SendText(admin, fmt.Sprintf("%s %d", c.cmd, u.ID))
			h.waitMessages(adminID, n+1)
			stale := fmt.Sprintf("%s:%d:%d", c.data, u.ID, old)
			if _, ok := h.withButton(adminID, stale); !ok {
				t.Fatalf("%s %s: no button %q:\n%s", lang, c.cmd, stale, dump(h.messages(adminID)[n:]))
			}
			// Meanwhile the trial ends by another way and the user pays.
			if err := h.svc.Revoke(h.ctx, h.userOf(u.ID)); err != nil {
				t.Fatal(err)
			}
			h.payStars(u, "month", fmt.Sprintf("stx-old-confirm-%s-%d", lang, j))
			bought := h.liveSub(u.ID)
			if bought == 0 || bought == old {
				t.Fatalf("%s %s: live subscription %d after buying, the old one %d", lang, c.cmd, bought, old)
			}
			before := len(h.messages(u.ID))
			h.press(admin, stale)
			if got := h.messages(adminID)[n].Text; got != text(lang, mAdminStale, u.ID) {
				t.Errorf("%s %s: the old Yes answered %q", lang, c.cmd, got)
			}
			h.idle()
			var banned bool
			h.queryRow(`SELECT banned FROM users WHERE telegram_id = $1`, []any{u.ID}, &banned)
			if h.liveSub(u.ID) != bought || banned {
				t.Errorf("%s %s: the old Yes ended the new subscription (live %d, banned %v)", lang, c.cmd, h.liveSub(u.ID), banned)
			}
			if got := h.messages(u.ID)[before:]; len(got) != 0 {
				t.Errorf("%s %s: the user was told:\n%s", lang, c.cmd, dump(got))
			}
		}
	}
}

func (h *harness) userOf(telegramID int64) wgbot.User {
	h.t.Helper()
	u, err := h.svc.UserByTelegramID(h.ctx, telegramID)
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// TestAdminButtonsRefusedToUsers: a user who forges an admin's callback
// data (adm:*, bc:*) gets what any outdated button gets and changes
// nothing: no revoke, no ban, no broadcast, no message. Renaming another
// user's device is refused too.
func TestAdminButtonsRefusedToUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{webhook: true})
	alice, mallory := user(17991, "en"), user(17992, "en")
	h.startTrial(alice)
	h.startTrial(mallory)
	alicePeer := h.peerOf(alice.ID, "device-1")
	aliceSub := strconv.FormatInt(h.liveSub(alice.ID), 10)
	h.press(mallory, "sub")
	for _, tc := range []struct {
		forged string
		want   msg
	}{
		{"adm:rv:17991:" + aliceSub, mOutdated},
		{"adm:ban:17991:" + aliceSub, mOutdated},
		{"adm:rv:17991:0", mOutdated},
		{"adm:no", mOutdated},
		{"bc:aud:all", mOutdated},
		{"bc:send:all", mOutdated},
		{"bc:send:active", mOutdated},
		{"dev:ren:" + strconv.FormatInt(alicePeer, 10), mErrNotFound},
	} {
		t.Run(tc.forged, func(t *testing.T) {
			before := len(h.messages(mallory.ID))
			forge := func(body []byte) []byte {
				return bytes.Replace(body, []byte(`"data":"menu"`), []byte(`"data":"`+tc.forged+`"`), 1)
			}
			h.rewrite.Store(&forge)
			ans := h.press(mallory, "menu")
			h.rewrite.Store(nil)
			if ans.Text != text(langEN, tc.want) || !ans.ShowAlert {
				t.Errorf("answer %+v, want alert %q", ans, text(langEN, tc.want))
			}
			h.idle()
			if after := h.messages(mallory.ID); len(after) != before {
				t.Errorf("forged press sent messages:\n%s", dump(after[before:]))
			}
		})
	}
	var broadcasts, renames int
	var banned bool
	h.queryRow(`SELECT count(*) FROM broadcasts`, nil, &broadcasts)
	h.queryRow(`SELECT banned FROM users WHERE telegram_id = $1`, []any{alice.ID}, &banned)
	if broadcasts != 0 || banned || h.liveSub(alice.ID) == 0 || h.peerStatus(alicePeer) != "active" {
		t.Errorf("forged admin presses changed something: %d broadcasts, alice banned %v, live %d, device %s",
			broadcasts, banned, h.liveSub(alice.ID), h.peerStatus(alicePeer))
	}
	// Mallory's next message is not taken as a name for Alice's device.
	h.tg.SendText(mallory, "stolen")
	h.idle()
	h.queryRow(`SELECT count(*) FROM peers WHERE name = 'stolen'`, nil, &renames)
	if renames != 0 {
		t.Error("a forged dev:ren renamed another user's device")
	}
	if n := len(h.messages(alice.ID)); n != 4 {
		t.Errorf("alice was sent something:\n%s", dump(h.messages(alice.ID)))
	}
}

// TestAdminRevoke (issue 17, items 2 and 11): /revoke asks first, in the
// admin's language; Cancel changes nothing; Yes revokes and tells the
// user in theirs. Both languages each way.
func TestAdminRevoke(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	admin := user(adminID, "en")
	h.tg.SendText(admin, "/start")
	h.waitMessages(adminID, 1)
	for i, lang := range languages() {
		h.mustExec(`UPDATE users SET language = $1 WHERE telegram_id = $2`, lang, adminID)
		other := map[string]string{langEN: langRU, langRU: langEN}[lang]
		u := user(int64(17995+i), other)
		h.startTrial(u)
		ask := func(cmd string) int {
			t.Helper()
			n := len(h.messages(adminID))
			h.tg.SendText(admin, cmd)
			h.waitMessages(adminID, n+1)
			return n
		}
		q := ask(fmt.Sprintf("/revoke @%s", u.Username))
		if got := h.messages(adminID)[q].Text; got != text(lang, mAdminRevokeConfirm, u.ID, u.Username) {
			t.Errorf("%s /revoke = %q", lang, got)
		}
		h.press(admin, "adm:no")
		if got := h.messages(adminID)[q].Text; got != text(lang, mAdminCancelled) {
			t.Errorf("%s: Cancel made the question %q", lang, got)
		}
		if h.liveSub(u.ID) == 0 {
			t.Fatalf("%s: Cancel revoked", lang)
		}
		q = ask(fmt.Sprintf("/revoke %d", u.ID))
		before := len(h.messages(u.ID))
		h.press(admin, fmt.Sprintf("adm:rv:%d:%d", u.ID, h.liveSub(u.ID)))
		if got := h.messages(adminID)[q].Text; got != text(lang, mAdminRevoked, u.ID) {
			t.Errorf("%s confirmed /revoke = %q", lang, got)
		}
		if h.liveSub(u.ID) != 0 {
			t.Errorf("%s: still live after the revoke", lang)
		}
		if told := h.waitMessages(u.ID, before+1)[before].Text; told != text(other, mAccessRevoked, "@wgbot_support") {
			t.Errorf("%s: revoked user told %q", lang, told)
		}
	}
}
