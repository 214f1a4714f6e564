package wgbot

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The rules below are pure functions: storage and transports call them, so
// each rule has one home and its edge cases one table test.

// The plans wgbot makes itself; an operator's plans file may not use
// their names.
const (
	TrialPlanName = "trial" // the free trial: TRIAL_DAYS, one device
	GrantPlanName = "grant" // an operator's or admin's gift of days
)

// TrialPlan is the free trial of days as a plan: one device.
func TrialPlan(days int) Plan { return Plan{Name: TrialPlanName, Days: days, Devices: 1} }

// ValidatePlan checks a plan an operator offers for sale: a name of its
// own, positive days, devices and prices, at least one price, and titles
// that fit a button.
func ValidatePlan(p Plan) error {
	switch {
	case p.Name == "" || p.Name == TrialPlanName || p.Name == GrantPlanName:
		return fmt.Errorf("name must be set and not %q or %q", TrialPlanName, GrantPlanName)
	case p.Kind != "" && p.Kind != PlanTopUp:
		return fmt.Errorf("kind must be empty (a subscription plan) or %q", PlanTopUp)
	case p.IsTopUp() && (p.Days != 0 || p.Devices != 0 || p.TrafficGB != 0):
		return errors.New("a top-up sells traffic only: no days, devices or traffic_gb")
	case p.IsTopUp() && !(p.TopUpBytes() >= MinTrafficBytes && p.TopUpGB <= MaxTrafficGB):
		return fmt.Errorf("topup_gb must be from %g to %g", float64(MinTrafficBytes)/1e9, float64(MaxTrafficGB))
	case !p.IsTopUp() && (p.Days <= 0 || p.Devices <= 0):
		return errors.New("days and devices must be positive")
	case !p.IsTopUp() && p.TopUpGB != 0:
		return fmt.Errorf("topup_gb is for plans of kind %q", PlanTopUp)
	case !p.IsTopUp() && p.TrafficGB != 0 && !(p.QuotaBytes() >= MinTrafficBytes && p.TrafficGB <= MaxTrafficGB):
		return fmt.Errorf("traffic_gb must be 0 (unlimited) or from %g to %g", float64(MinTrafficBytes)/1e9, float64(MaxTrafficGB))
	case len(p.Prices) == 0:
		return errors.New("no prices")
	}
	for cur, amount := range p.Prices {
		if amount <= 0 {
			return fmt.Errorf("price in %s must be positive", cur)
		}
	}
	for lang, title := range p.Titles {
		if n := utf8.RuneCountInString(strings.TrimSpace(title)); n == 0 || n > MaxPlanTitle || !utf8.ValidString(title) {
			return fmt.Errorf("title in %q must have 1 to %d characters", lang, MaxPlanTitle)
		}
	}
	return nil
}

// Bounds of a plan's traffic_gb and topup_gb: a megabyte (small enough
// for a test's quota) to a petabyte.
const (
	MinTrafficBytes = 1_000_000
	MaxTrafficGB    = 1e6
)

// Quota levels: how far a month's traffic has gone into its allowance.
// The user is told once at each; at QuotaFull the devices are switched off.
const (
	QuotaWarn = 80
	QuotaFull = 100
)

// QuotaLevel is the highest level used bytes have reached of allowance
// (QuotaWarn, QuotaFull), or 0 below QuotaWarn and for an unlimited
// allowance (0).
func QuotaLevel(used, allowance int64) int {
	switch {
	case allowance <= 0:
		return 0
	case used >= allowance:
		return QuotaFull
	case used >= allowance/100*QuotaWarn+allowance%100*QuotaWarn/100:
		return QuotaWarn
	}
	return 0
}

// MaxPlanTitle is the longest title of a plan, in characters: it is shown
// in a button with its price.
const MaxPlanTitle = 32

// OrderLifetime is how long a checkout is offered; a payment arriving
// later is still credited (money is never kept without giving time).
const OrderLifetime = 24 * time.Hour

// Open orders per user: pressing Pay again for the same plan and provider
// shows the open order's checkout while at least OrderReuseFor of its
// lifetime is left, and a user keeps at most MaxOpenOrders pending (the
// oldest beyond are canceled), so a flood of presses makes no flood of
// orders or provider checkouts.
const (
	OrderReuseFor = OrderLifetime / 2
	MaxOpenOrders = 3
)

// MaxGrantDays is the most days one operator grant may add: ten years.
const MaxGrantDays = 3650

// ErrBadDays is a grant of days outside 1..MaxGrantDays.
var ErrBadDays = &Error{Code: EInvalid, Reason: "bad_days", Message: "days out of range"}

// GrantPlan is the plan an operator's grant (the bot's /grant, `wgbot
// grant`, `wgbot issue`) amounts to: days from 1 to MaxGrantDays, and a
// device limit of at least devices (0 means one).
func GrantPlan(days, devices int) (Plan, error) {
	if days < 1 || days > MaxGrantDays {
		return Plan{}, Errorf(EInvalid, ErrBadDays.Reason, "days must be from 1 to %d, got %d", MaxGrantDays, days)
	}
	return Plan{Name: GrantPlanName, Days: days, Devices: max(devices, 1)}, nil
}

// Renewal is what paying for a plan (or a grant) does to a subscription
// that exists: the new expiry and device limit, and whether its old
// devices come back.
type Renewal struct {
	ExpiresAt   time.Time
	DeviceLimit int
	// Restore: the subscription's disabled devices come back with their
	// addresses. False past the renewal grace period: they are revoked,
	// and the renewal issues a new device.
	Restore bool
}

// Renew extends sub by plan at now. A live subscription is extended from
// its current expiry, so no paid day is lost; an ended one from now. Its
// devices come back if it ended no more than grace ago (grace <= 0: always).
// The device limit never shrinks.
func Renew(sub Subscription, plan Plan, now time.Time, grace time.Duration) Renewal {
	start := now
	if sub.Status == SubscriptionActive && sub.ExpiresAt.After(now) {
		start = sub.ExpiresAt
	}
	return Renewal{
		ExpiresAt:   start.AddDate(0, 0, plan.Days),
		DeviceLimit: max(sub.DeviceLimit, plan.Devices),
		Restore:     grace <= 0 || !now.After(sub.ExpiresAt.Add(grace)),
	}
}

// CanAddDevice says whether a subscription with inUse devices (any not
// revoked) may have one more: ErrDeviceLimit at or above its limit.
func CanAddDevice(sub Subscription, inUse int) error {
	if inUse >= sub.DeviceLimit {
		return ErrDeviceLimit
	}
	return nil
}

// MaxDeviceName is the longest device name, in characters: it must fit a
// button beside another.
const MaxDeviceName = 24

// numberedName is the form of the names new devices are given.
var numberedName = regexp.MustCompile(`^device-[0-9]+$`)

// DeviceName checks a name a user gives one of their devices and returns it
// without surrounding space: 1 to MaxDeviceName printable characters, and
// not device-N, the form new devices are numbered in, which a later device
// would repeat. ErrDeviceName otherwise.
func DeviceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxDeviceName || !utf8.ValidString(name) || numberedName.MatchString(strings.ToLower(name)) {
		return "", ErrDeviceName
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", ErrDeviceName
		}
	}
	return name, nil
}

// Mismatch says how a payment differs from the order it claims to pay
// (who paid, in what currency, how much), or "" if it matches. A payment
// that mismatches is never credited: ErrPaymentMismatch.
func (o Order) Mismatch(userID int64, currency string, amount int64) string {
	switch {
	case o.UserID != userID:
		return fmt.Sprintf("paid by user %d, ordered by user %d", userID, o.UserID)
	case o.Currency != currency:
		return fmt.Sprintf("paid in %s, ordered in %s", currency, o.Currency)
	case o.Amount != amount:
		return fmt.Sprintf("paid %d, ordered %d", amount, o.Amount)
	}
	return ""
}
