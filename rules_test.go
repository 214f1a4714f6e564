package wgbot

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestGrantPlan(t *testing.T) {
	for _, tt := range []struct {
		days, devices int
		want          Plan
		err           error
	}{
		{days: 1, devices: 0, want: Plan{Name: "grant", Days: 1, Devices: 1}},
		{days: 30, devices: 3, want: Plan{Name: "grant", Days: 30, Devices: 3}},
		{days: MaxGrantDays, devices: 1, want: Plan{Name: "grant", Days: MaxGrantDays, Devices: 1}},
		{days: -5, devices: -1, want: Plan{}, err: ErrBadDays},
		{days: 0, devices: 1, err: ErrBadDays},
		{days: MaxGrantDays + 1, devices: 1, err: ErrBadDays},
	} {
		got, err := GrantPlan(tt.days, tt.devices)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("GrantPlan(%d, %d) error = %v, want %v", tt.days, tt.devices, err, tt.err)
		}
		if tt.err == nil && (got.Name != tt.want.Name || got.Days != tt.want.Days || got.Devices != tt.want.Devices) {
			t.Errorf("GrantPlan(%d, %d) = %+v, want %+v", tt.days, tt.devices, got, tt.want)
		}
		if tt.err != nil && ErrorCode(err) != EInvalid {
			t.Errorf("GrantPlan(%d, %d): kind %q, want invalid", tt.days, tt.devices, ErrorCode(err))
		}
	}
}

func TestRenew(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	month := Plan{Name: "month", Days: 30, Devices: 2}
	grace := 30 * day
	for _, tt := range []struct {
		name string
		sub  Subscription
		want Renewal
	}{
		{"live: extended from its expiry, devices kept",
			Subscription{Status: SubscriptionActive, ExpiresAt: now.Add(5 * day), DeviceLimit: 1},
			Renewal{ExpiresAt: now.Add(35 * day), DeviceLimit: 2, Restore: true}},
		{"one minute before expiry",
			Subscription{Status: SubscriptionActive, ExpiresAt: now.Add(time.Minute), DeviceLimit: 3},
			Renewal{ExpiresAt: now.Add(time.Minute).AddDate(0, 0, 30), DeviceLimit: 3, Restore: true}},
		{"active but past its expiry (not yet swept): from now",
			Subscription{Status: SubscriptionActive, ExpiresAt: now.Add(-time.Hour), DeviceLimit: 1},
			Renewal{ExpiresAt: now.AddDate(0, 0, 30), DeviceLimit: 2, Restore: true}},
		{"expired within the grace period: from now, devices restored",
			Subscription{Status: SubscriptionExpired, ExpiresAt: now.Add(-10 * day), DeviceLimit: 1},
			Renewal{ExpiresAt: now.AddDate(0, 0, 30), DeviceLimit: 2, Restore: true}},
		{"expired exactly at the end of the grace period: restored",
			Subscription{Status: SubscriptionExpired, ExpiresAt: now.Add(-grace), DeviceLimit: 1},
			Renewal{ExpiresAt: now.AddDate(0, 0, 30), DeviceLimit: 2, Restore: true}},
		{"expired after the grace period: a new device",
			Subscription{Status: SubscriptionExpired, ExpiresAt: now.Add(-grace - time.Second), DeviceLimit: 1},
			Renewal{ExpiresAt: now.AddDate(0, 0, 30), DeviceLimit: 2, Restore: false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Renew(tt.sub, month, now, grace); got != tt.want {
				t.Errorf("Renew = %+v, want %+v", got, tt.want)
			}
		})
	}
	old := Subscription{Status: SubscriptionExpired, ExpiresAt: now.AddDate(-1, 0, 0)}
	if !Renew(old, month, now, 0).Restore {
		t.Error("grace 0 must always restore")
	}
}

func TestCanAddDevice(t *testing.T) {
	sub := Subscription{DeviceLimit: 3}
	for inUse, want := range map[int]error{0: nil, 2: nil, 3: ErrDeviceLimit, 4: ErrDeviceLimit} {
		if err := CanAddDevice(sub, inUse); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("CanAddDevice(limit 3, %d in use) = %v, want %v", inUse, err, want)
		}
	}
}

func TestDeviceName(t *testing.T) {
	for in, want := range map[string]string{
		"Phone": "Phone", "  My laptop ": "My laptop", "Телефон мамы": "Телефон мамы", "📱": "📱",
		strings.Repeat("я", MaxDeviceName): strings.Repeat("я", MaxDeviceName),
		"":                                 "", "   ": "", strings.Repeat("a", MaxDeviceName+1): "", "tab\there": "", "line\nbreak": "",
		"device-3": "", "Device-12": "", "\xff\xfe": "", "zero\u200bwidth": "",
	} {
		got, err := DeviceName(in)
		if got != want || (want == "") != errors.Is(err, ErrDeviceName) {
			t.Errorf("DeviceName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestOrderMismatch(t *testing.T) {
	o := Order{UserID: 7, Currency: "XTR", Amount: 150}
	for _, tt := range []struct {
		user     int64
		currency string
		amount   int64
		want     string
	}{
		{7, "XTR", 150, ""},
		{8, "XTR", 150, "paid by user 8, ordered by user 7"},
		{7, "RUB", 150, "paid in RUB, ordered in XTR"},
		{7, "XTR", 149, "paid 149, ordered 150"},
		{7, "XTR", 151, "paid 151, ordered 150"},
	} {
		if got := o.Mismatch(tt.user, tt.currency, tt.amount); got != tt.want {
			t.Errorf("Mismatch(%d, %s, %d) = %q, want %q", tt.user, tt.currency, tt.amount, got, tt.want)
		}
	}
}

func TestValidatePlan(t *testing.T) {
	good := Plan{Name: "month", Days: 30, Devices: 3, Prices: map[string]int64{"XTR": 150}}
	with := func(change func(*Plan)) Plan {
		p := good
		p.Prices = map[string]int64{"XTR": 150}
		change(&p)
		return p
	}
	for _, tt := range []struct {
		name string
		plan Plan
		ok   bool
	}{
		{"a plan for sale", good, true},
		{"no name", with(func(p *Plan) { p.Name = "" }), false},
		{"the trial's name", with(func(p *Plan) { p.Name = TrialPlanName }), false},
		{"the grant's name", with(func(p *Plan) { p.Name = GrantPlanName }), false},
		{"no days", with(func(p *Plan) { p.Days = 0 }), false},
		{"no devices", with(func(p *Plan) { p.Devices = 0 }), false},
		{"no prices", with(func(p *Plan) { p.Prices = nil }), false},
		{"a free price", with(func(p *Plan) { p.Prices["RUB"] = 0 }), false},
		{"a monthly quota", with(func(p *Plan) { p.TrafficGB = 50 }), true},
		{"a few MB of quota", with(func(p *Plan) { p.TrafficGB = 0.005 }), true},
		{"a negative quota", with(func(p *Plan) { p.TrafficGB = -1 }), false},
		{"a quota under a megabyte", with(func(p *Plan) { p.TrafficGB = 0.0000001 }), false},
		{"a quota past a petabyte", with(func(p *Plan) { p.TrafficGB = 2e6 }), false},
		{"a top-up amount on a plan", with(func(p *Plan) { p.TopUpGB = 50 }), false},
		{"an unknown kind", with(func(p *Plan) { p.Kind = "bundle" }), false},
		{"a top-up", Plan{Name: "plus50", Kind: PlanTopUp, TopUpGB: 50, Prices: map[string]int64{"XTR": 50}}, true},
		{"a top-up with days", Plan{Name: "plus50", Kind: PlanTopUp, TopUpGB: 50, Days: 30, Prices: map[string]int64{"XTR": 50}}, false},
		{"a top-up with devices", Plan{Name: "plus50", Kind: PlanTopUp, TopUpGB: 50, Devices: 1, Prices: map[string]int64{"XTR": 50}}, false},
		{"a top-up with a quota", Plan{Name: "plus50", Kind: PlanTopUp, TopUpGB: 50, TrafficGB: 5, Prices: map[string]int64{"XTR": 50}}, false},
		{"a top-up of nothing", Plan{Name: "plus0", Kind: PlanTopUp, Prices: map[string]int64{"XTR": 50}}, false},
		{"a free top-up", Plan{Name: "plus50", Kind: PlanTopUp, TopUpGB: 50}, false},
	} {
		if err := ValidatePlan(tt.plan); (err == nil) != tt.ok {
			t.Errorf("%s: ValidatePlan = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if p := TrialPlan(3); p.Name != TrialPlanName || p.Days != 3 || p.Devices != 1 {
		t.Errorf("TrialPlan(3) = %+v", p)
	}
}

func TestQuotaLevel(t *testing.T) {
	for _, tt := range []struct {
		used, allowance int64
		want            int
	}{
		{0, 0, 0},
		{1 << 40, 0, 0}, // unlimited
		{0, 1000, 0},
		{799, 1000, 0},
		{800, 1000, QuotaWarn},
		{999, 1000, QuotaWarn},
		{1000, 1000, QuotaFull},
		{5000, 1000, QuotaFull},
		{8, 10, QuotaWarn},
		{7, 10, 0},
		{4_000_000, 5_000_000, QuotaWarn},
		{3_999_999, 5_000_000, 0},
		{1 << 62, 1<<62 + 1, QuotaWarn}, // no overflow
	} {
		if got := QuotaLevel(tt.used, tt.allowance); got != tt.want {
			t.Errorf("QuotaLevel(%d, %d) = %d, want %d", tt.used, tt.allowance, got, tt.want)
		}
	}
	if GB(0.005) != 5_000_000 || GB(50) != 50_000_000_000 {
		t.Errorf("GB(0.005) = %d, GB(50) = %d", GB(0.005), GB(50))
	}
}
