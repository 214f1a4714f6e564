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
		"", "MENU", "menu ", " menu", "menu:", ":menu", "trial:1", "sub:x",
		"dev:cfg:", "dev:cfg:0", "dev:cfg:007", "dev:cfg:-1", "dev:cfg:+1", "dev:cfg:1.0", "dev:cfg:1e3", "dev:cfg: 1",
		"dev:cfg:9223372036854775808", "dev:cfg:99999999999999999999", "dev:cfg:1:2", "dev:rm:abc", "dev:rmok:", "dev:add:1",
		"dev:del:1", "lang:de", "lang:EN", "lang:", "buy:plan:", "buy:plan:a b", "buy:plan:" + strings.Repeat("p", 33),
		"buy:plan:месяц", "buy:pay:stars", "buy:pay::month", "buy:pay:Stars:month", "buy:pay:stars:month:1",
		"buy:pay:" + strings.Repeat("x", 17) + ":month", strings.Repeat("a", 65), "dev:cfg:1\x00",
		"trial!", "help!", "dev:cfg:1!", "sub!!", "!", "buy:plan:month!",
	} {
		if c, ok := parseCallback(data); ok {
			t.Errorf("parseCallback(%q) accepted as %+v", data, c)
		}
	}
}

func TestConfFileName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-zA-Z0-9_=+.-]{1,15}\.conf$`)
	for device, want := range map[string]string{
		"device-1":          "wgbot-device-1.conf",
		"device-10":         "wgbot-device-10.conf",
		"device-100":        "wgbot-device-10.conf",
		"my phone":          "wgbot-my_phone.conf",
		"телефон":           "wgbot-_______.conf",
		"a/b\\c":            "wgbot-a_b_c.conf",
		"":                  "wgbot-.conf",
		"x=y+z.1":           "wgbot-x=y+z.1.conf",
		"averyveryverylong": "wgbot-averyvery.conf",
	} {
		got := confFileName(device)
		if got != want || !valid.MatchString(got) {
			t.Errorf("confFileName(%q) = %q, want %q (at most 15 characters wg-quick accepts, then .conf)", device, got, want)
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

func TestReferrerOf(t *testing.T) {
	t.Parallel()
	for payload, want := range map[string]int64{"ref_42": 42, "ref_": 0, "ref_-1": 0, "ref_042": 0, "42": 0, "": 0, "ref_42x": 0} {
		if got := referrerOf(payload); got != want {
			t.Errorf("referrerOf(%q) = %d, want %d", payload, got, want)
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

// TestPacer: the pacer lets no more than rate events into any second and
// honours a pause.
func TestPacer(t *testing.T) {
	t.Parallel()
	p := newPacer(50)
	ctx := context.Background()
	var times []time.Time
	for range 60 {
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
		times = append(times, time.Now())
	}
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < time.Second; j++ {
			n++
		}
		if n > 50 {
			t.Fatalf("%d events within a second at rate 50", n)
		}
	}
	p.pause(300 * time.Millisecond)
	start := time.Now()
	_ = p.wait(ctx)
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("waited %v after a 300ms pause", waited)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	p.pause(time.Hour)
	if err := p.wait(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with a cancelled context: %v", err)
	}
}
