package wgbot

import "time"

// StarSubscriptionDays is the period of an auto-renewing Telegram Stars
// subscription: Telegram allows 30 days (subscription_period 2592000) and
// nothing else.
const StarSubscriptionDays = 30

// StarSubscriptionPeriod is StarSubscriptionDays in seconds, as the Bot
// API takes it.
const StarSubscriptionPeriod = StarSubscriptionDays * 24 * 60 * 60

// Renewable reports whether plan can be sold as an auto-renewing Stars
// subscription: each charge must buy exactly the period Telegram charges
// for, or renewals would drift from the user's expiry.
func Renewable(p Plan) bool {
	_, stars := p.Prices["XTR"]
	return p.Days == StarSubscriptionDays && stars
}

// StarSubscription is a user's auto-renewing Stars subscription.
type StarSubscription struct {
	ID       int64
	UserID   int64
	OrderID  int64
	ChargeID string    // its first charge: names it to Telegram
	RenewsAt time.Time // when Telegram charges it next (its current period's end)
	Canceled bool      // renewal is off: it ends at RenewsAt
}

// Recurring marks a Credit as a charge of a Stars subscription.
type Recurring struct {
	First     bool      // the subscription's first charge
	ExpiresAt time.Time // Telegram's subscription_expiration_date after this charge
}

// ErrNoStarSubscription: the user has no live auto-renewing subscription.
var ErrNoStarSubscription = &Error{Code: ENotFound, Reason: "no_star_subscription", Message: "the user has no auto-renewing subscription"}
