package telegram

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"wgbot"
)

func TestCallbackRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []callback{
		{act: actMenu}, {act: actTrial}, {act: actBuy}, {act: actSubscription}, {act: actHelp}, {act: actLanguages},
		{act: actDeviceAdd}, {act: actLanguage, lang: langEN}, {act: actLanguage, lang: langRU},
		{act: actPlan, plan: "month"}, {act: actPlan, plan: "Year_2.0-pro"}, {act: actPay, provider: "stars", plan: "month"},
		{act: actPay, provider: "yookassa", plan: strings.Repeat("p", 32)},
		{act: actMenu, fresh: true}, {act: actBuy, fresh: true}, {act: actSubscription, fresh: true},
		{act: actDeviceConfig, peerID: 1}, {act: actDeviceRemove, peerID: 42}, {act: actDeviceRemoved, peerID: 9223372036854775807},
		{act: actAdminRevoke, telegramID: 5101}, {act: actAdminCancel}, {act: actAdminBan, telegramID: 5101},
		{act: actAdminRevoke, telegramID: 9223372036854775807, subID: 9223372036854775807}, {act: actAdminBan, telegramID: 5101, subID: 3}, {act: actDeviceRename, peerID: 7}, {act: actRenameCancel},
		{act: actBroadcastAudience, audience: wgbot.AudienceNeverPaid}, {act: actBroadcastSend, audience: wgbot.AudienceAll},
		{act: actLocations}, {act: actLocation, then: pickTrial}, {act: actLocation, then: pickDevice, serverID: 7},
		{act: actLocation, then: pickPlans, serverID: 9223372036854775807}, {act: actDeviceMove, peerID: 5},
		{act: actMoveTo, peerID: 9223372036854775807, serverID: 9223372036854775807},
		{act: actSubscribe, plan: "month"}, {act: actRenewOff}, {act: actRenewOn}, {act: actGift, plan: "month"},
		{act: actAutorenewOff}, {act: actSaveCard, provider: "yookassa", plan: "month", on: true},
		{act: actSaveCard, provider: strings.Repeat("y", 16), plan: strings.Repeat("p", 32)},
	} {
		data := c.data()
		if len(data) > maxCallbackData {
			t.Errorf("%+v encodes to %d bytes", c, len(data))
		}
		got, ok := parseCallback(data)
		if !ok || got != c {
			t.Errorf("parseCallback(%q) = %+v, %v; want %+v", data, got, ok, c)
		}
	}
}

func TestCallbackRefused(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		"", "MENU", "menu ", " menu", "menu:", ":menu", "trial:1", "sub:x", "sub:renew", "sub:renew:", "sub:renew:OFF", "sub:renew:off:1", "buy:sub:", "buy:sub:a b",
		"dev:cfg:", "dev:cfg:0", "dev:cfg:007", "dev:cfg:-1", "dev:cfg:+1", "dev:cfg:1.0", "dev:cfg:1e3", "dev:cfg: 1",
		"dev:cfg:9223372036854775808", "dev:cfg:99999999999999999999", "dev:cfg:1:2", "dev:rm:abc", "dev:rmok:", "dev:add:1",
		"dev:del:1", "lang:de", "lang:EN", "lang:", "buy:plan:", "buy:plan:a b", "buy:plan:" + strings.Repeat("p", 33),
		"buy:plan:месяц", "buy:pay:stars", "buy:pay::month", "buy:pay:Stars:month", "buy:pay:stars:month:1",
		"buy:pay:" + strings.Repeat("x", 17) + ":month", strings.Repeat("a", 65), "dev:cfg:1\x00",
		"trial!", "help!", "dev:cfg:1!", "sub!!", "!", "buy:plan:month!",
		"adm:rv:", "adm:rv:0", "adm:rv:x", "adm:rv:1", "adm:ban:1", "adm:rv:1:", "adm:rv:1:00", "adm:rv:1:02", "adm:rv:0:1", "adm:rv:1:2:3", "adm:ban:1:x", "adm:no:1", "adm:rv:1:0!", "adm", "dev:ren:", "dev:ren:0", "dev:keep:1", "dev:ren:x", "bc:aud:", "bc:aud:everyone", "bc:send:ALL", "bc:send:all:1",
		"loc:", "loc:x", "loc:t", "loc:t:", "loc:t:0", "loc:t:ANY", "loc:q:1", "loc:t:1:2", "loc:m:1", "loc:m:1:", "loc:m:0:1", "loc:m:1:any",
		"loc:t:any!", "dev:mv:", "dev:mv:0", "dev:mv:1:2",
		"buy:card:yookassa:month", "buy:card:yookassa:month:", "buy:card:yookassa:month:ON", "buy:card:yookassa:month:1",
		"buy:card::month:on", "buy:card:yookassa:a b:on", "buy:card:yookassa:month:on:1", "buy:card:yookassa:month:on!",
	} {
		if c, ok := parseCallback(data); ok {
			t.Errorf("parseCallback(%q) accepted as %+v", data, c)
		}
	}
}

func TestConfFileName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}\.conf$`)
	for _, tc := range []struct {
		name   string
		number int
		want   string
	}{
		{"device-1", 1, "wgbot-device-1.conf"},
		{"device-10", 10, "wgbot-device-10.conf"},
		{"device-100", 100, "wg-device-100.conf"},
		{"device-1000", 1000, "wg-device-1000.conf"},
		{"my phone", 3, "wg3-my_phone.conf"},
		{"телефон", 4, "wg4-_______.conf"},
		{"планшет", 5, "wg5-_______.conf"},
		{"device-2", 6, "wg6-device-2.conf"}, // renamed to another device's old name
		{"a/b\\c", 7, "wg7-a_b_c.conf"},
		{"x=y+z.1", 8, "wg8-x=y+z.1.conf"},
		{"averyveryverylong", 12, "wg12-averyveryv.conf"},
		{"laptop", 0, "wgbot-laptop.conf"}, // a device read without its number
	} {
		got := confFileName(wgbot.Peer{Name: tc.name, Number: tc.number})
		if got != tc.want || !valid.MatchString(got) {
			t.Errorf("confFileName(%q, %d) = %q, want %q (at most 15 characters wg-quick accepts, then .conf)", tc.name, tc.number, got, tc.want)
		}
	}
}

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{150, "XTR", "150 ⭐"}, {19900, "RUB", "199.00 RUB"}, {199, "USD", "1.99 USD"}, {5, "USD", "0.05 USD"},
		{-250, "EUR", "-2.50 EUR"}, {500, "JPY", "500 JPY"},
	} {
		if got := formatAmount(tc.amount, tc.currency); got != tc.want {
			t.Errorf("formatAmount(%d, %s) = %q, want %q", tc.amount, tc.currency, got, tc.want)
		}
	}
}

func TestDaysLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		until time.Time
		want  int
	}{
		{now.Add(-time.Hour), 0}, {now, 0}, {now.Add(time.Minute), 1}, {now.Add(24 * time.Hour), 1},
		{now.Add(24*time.Hour + time.Second), 2}, {now.AddDate(0, 0, 30), 30},
	} {
		if got := daysLeft(tc.until, now); got != tc.want {
			t.Errorf("daysLeft(%v) = %d, want %d", tc.until.Sub(now), got, tc.want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text, name, args string
		ok               bool
	}{
		{"/start", "start", "", true},
		{"/start ref_42", "start", "ref_42", true},
		{"/START@tgtest_bot ref_42", "start", "ref_42", true},
		{"/broadcast line one\nline two", "broadcast", "line one\nline two", true},
		{"/broadcast\nline one", "broadcast", "line one", true},
		{"/grant  123   30 ", "grant", "123   30", true},
		{"hello", "", "", false},
		{"/", "", "", false},
		{"/стоп", "", "", false},
		{"/" + strings.Repeat("a", 33), "", "", false},
	} {
		name, args, ok := parseCommand(tc.text)
		if name != tc.name || args != tc.args || ok != tc.ok {
			t.Errorf("parseCommand(%q) = %q, %q, %v; want %q, %q, %v", tc.text, name, args, ok, tc.name, tc.args, tc.ok)
		}
	}
}

// TestReferralCodeOf: only "ref_" and a code of the form the service
// makes is a referral; a Telegram id is too short and carries no
// referral, other payloads none either.
func TestReferralCodeOf(t *testing.T) {
	t.Parallel()
	for payload, want := range map[string]string{"ref_abcd2345xy": "abcd2345xy", "ref_": "", "ref_42": "", "ref_ABCD2345XY": "",
		"abcd2345xy": "", "": "", "ref_abcd2345xy!": "", "ref_" + strings.Repeat("a", 17): ""} {
		if got := referralCodeOf(payload); got != want {
			t.Errorf("referralCodeOf(%q) = %q, want %q", payload, got, want)
		}
	}
}

// TestUserError: the one mapping from errors to what users read. Wrapped
// errors map like the originals; anything unknown is internal.
func TestUserError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want msg
	}{
		{wgbot.ErrTrialUsed, mErrTrialUsed},
		{fmt.Errorf("issue trial for user 7: %w", wgbot.ErrTrialUsed), mErrTrialUsed},
		{wgbot.ErrHasAccess, mErrHasAccess},
		{wgbot.ErrDeviceLimit, mErrDeviceLimit},
		{wgbot.ErrNoSubscription, mErrNoSub},
		{wgbot.ErrPeerNotFound, mErrNotFound},
		{wgbot.ErrUserNotFound, mErrNotFound},
		{wgbot.ErrNoFreeAddress, mErrNoAddress},
		{wgbot.ErrNoServer, mErrNoServer},
		{wgbot.ErrBanned, mErrBanned},
		{fmt.Errorf("%w: %v", wgbot.ErrApplyFailed, errBoom), mErrApplyFailed},
		{wgbot.ErrPaymentMismatch, mErrMismatch},
		{wgbot.Errorf(wgbot.EConflict, "order_closed", "order 1 is paid"), mErrOrderClosed},
		{wgbot.ErrOrderNotFound, mErrOrderGone},
		{fmt.Errorf("payload %q: %w", "x", errNotOurInvoice), mErrOrderGone},
		{fmt.Errorf("%w: %w", errCheckoutStart, errBoom), mErrCheckoutStart},
		{wgbot.Errorf(wgbot.EInvalid, "no_price", "x"), mErrNoPrice},
		{wgbot.Errorf(wgbot.EInvalid, "trial_disabled", "x"), mErrTrialOff},
		{wgbot.Errorf(wgbot.EInvalid, "unknown_plan", "x"), mOutdated},
		{wgbot.Errorf(wgbot.EInvalid, "something_new", "x"), mErrInvalid},
		{wgbot.Errorf(wgbot.EConflict, "", "x"), mErrConflict},
		{wgbot.Errorf(wgbot.EUnavailable, "", "x"), mErrUnavailable},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), mErrUnavailable},
		{errBoom, mErrInternal},
		{errors.New("pq: relation does not exist"), mErrInternal},
	} {
		if got := userError(tc.err); got != tc.want {
			t.Errorf("userError(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// TestAdminActionsListed: the buttons refused to non-admins are exactly
// those whose data is an admin's (adm:*, bc:*), whatever order the
// actions are declared in.
func TestAdminActionsListed(t *testing.T) {
	t.Parallel()
	known := 0
	for act := action(0); act < 100; act++ {
		data, ok := func() (data string, ok bool) {
			defer func() { ok = recover() == nil }()
			return callback{act: act, telegramID: 1, peerID: 1, plan: "p", provider: "x", lang: langEN, audience: wgbot.AudienceAll}.data(), true
		}()
		if !ok {
			continue
		}
		known++
		admin := strings.HasPrefix(data, "adm:") || strings.HasPrefix(data, "bc:")
		if adminActions[act] != admin {
			t.Errorf("action %d (%q): admin-only %v, want %v", act, data, adminActions[act], admin)
		}
	}
	if known < 20 || len(adminActions) != 5 {
		t.Errorf("%d actions known, %d admin-only", known, len(adminActions))
	}
}

// TestRefundHint: /user's payments heading says /refund takes Stars
// charges only (it refunds through Telegram), in both languages.
func TestRefundHint(t *testing.T) {
	t.Parallel()
	for _, lang := range languages() {
		if hint := lead(lang, mAdminUserPayments); !strings.Contains(hint, providerStars+" ") || !strings.Contains(hint, "/refund") {
			t.Errorf("%s: /user's payments heading %q does not say /refund is for %s payments", lang, hint, providerStars)
		}
	}
}
