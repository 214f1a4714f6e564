package wgbot

import (
	"fmt"
	"time"
)

// The values below cross the boundary between the store and the service:
// the store fills them inside its transactions, the service and its callers
// read them. They live here so neither side's signature names the other.

// Credit is a verified payment to apply: the provider's id makes it unique.
type Credit struct {
	Provider          string
	ProviderPaymentID string
	OrderID           int64 // 0: no order (e.g. an admin grant)
	UserID            int64
	Amount            int64
	Currency          string
	Plan              Plan
	Raw               []byte // provider's payload, kept for disputes
	Flag              string // why an admin should look, e.g. "banned user"
	// Recurring: a charge of a Stars subscription, recorded with it.
	Recurring *Recurring
	// GiftToken is the link token a gift order's payment makes its gift
	// with; unused for any other order.
	GiftToken string
	// Traffic is the order's copy of what it sold: a plan's monthly quota
	// (bytes, 0: unlimited), or with TopUp the bytes added to this month.
	Traffic int64
	TopUp   bool
}

// CreditResult is what applying a Credit did.
type CreditResult struct {
	Duplicate    bool // this payment was credited before; nothing changed
	PaymentID    int64
	Subscription Subscription
	NewPeer      *Peer // set when the payment issued the first device
	Change       Change
	Gift         *Gift // the gift a gift order's payment made (then nothing else changed)
	TopUp        int64 // bytes a top-up added to the month's allowance (then no days)
}

// RefundResult is what reversing a payment did.
type RefundResult struct {
	Duplicate    bool // already refunded or settled; nothing changed
	Settled      bool // never credited: recorded as refunded, no days given
	Kept         bool // a partial refund of a credited payment: its period stays
	UserID       int64
	Days         int // days taken back (rounded up); 0 when the period was used up
	Subscription Subscription
	Revoked      bool // the refund took all remaining time: access ended
	Changes      []Change
	// BonusDays are the days taken back from the referral bonuses the
	// payment earned (their unused part), on either side.
	BonusDays int
	// Note is what the operator must still do by hand: the money of a
	// provider that cannot refund (Crypto Pay) goes back as a transfer.
	Note string
}

// Expired is a subscription that reached its expiry and was ended.
type Expired struct {
	SubscriptionID int64
	UserID         int64
	TelegramID     int64
	Language       string
	ExpiresAt      time.Time
}

// Stats is the operator's overview (/stats): the state now, and what
// happened in each window.
type Stats struct {
	Users               int64 // every user ever
	ActiveSubscriptions int64 // live now, trials included
	ActiveTrials        int64 // live trials now
	ExpiringSoon        int64 // live subscriptions ending within StatsExpiringWithin
	PendingPayments     int64 // orders open now: created, neither paid nor expired
	Servers             []ServerLoad
	PromoCodes          int64         // promo codes ever created
	ActivePromoCodes    int64         // of those, redeemable now: not disabled, not expired, uses left
	Windows             []StatsWindow // in the order they were asked for
	TopConsumers        []Consumer    // the most traffic this month, most first (StatsTopConsumers)
	OverQuota           []Quota       // live subscriptions at or past their allowance this month, most used first (StatsOverQuota)
}

// StatsTopConsumers is how many users Stats.TopConsumers lists.
const StatsTopConsumers = 5

// StatsOverQuota is how many subscriptions Stats.OverQuota lists at most.
const StatsOverQuota = 10

// StatsExpiringWithin is how far ahead Stats.ExpiringSoon looks.
const StatsExpiringWithin = 3 * 24 * time.Hour

// ServerLoad is one server's active peers and health.
type ServerLoad struct {
	Name        string
	ActivePeers int64
	Draining    bool // takes no new peers
	NodeDown    bool // its `wgbot node` has been silent longer than NODE_DOWN_AFTER
}

// StatsWindow is what happened from Since until the stats were taken.
type StatsWindow struct {
	Since           time.Time
	NewUsers        int64 // users registered
	TrialsStarted   int64 // trials taken (not: trials live now)
	TrialsConverted int64 // of those trials, the users who have paid since
	Payments        int64 // payments credited and not refunded
	FailedPayments  int64 // orders created that were canceled or expired unpaid
	// Revenue is money kept: what providers charged for payments credited
	// and not refunded, so discounts are already off it (bonus and promo
	// days are no money and count nothing).
	Revenue []Revenue
	// Discounts is what promo codes took off those payments' prices.
	Discounts        []Revenue
	Referred         int64 // new users who came through a referral link
	ReferralBonuses  int64 // referral bonuses given and not taken back (each side counts)
	PromoRedemptions int64 // promo codes redeemed
}

// Revenue is money kept (credited, not refunded) by provider and currency.
type Revenue struct {
	Provider string
	Currency string
	Amount   int64 // minor units
}

// Audience is who a broadcast goes to, of the users who have not blocked
// the bot.
type Audience string

// The audiences an admin can choose.
const (
	AudienceAll       Audience = "all"
	AudienceActive    Audience = "active"  // a live subscription
	AudienceExpired   Audience = "expired" // had one, none is live
	AudienceNeverPaid Audience = "unpaid"  // no payment ever (trial users included)
)

// Audiences lists them in the order an admin is offered them.
func Audiences() []Audience {
	return []Audience{AudienceAll, AudienceActive, AudienceExpired, AudienceNeverPaid}
}

// Usage is a device's (or a user's) traffic this calendar month (UTC), as
// the server's WireGuard device counts it, and when it last connected.
type Usage struct {
	Received    int64     // bytes the server received from the device: its upload
	Transmitted int64     // bytes the server sent to it: its download
	LastSeen    time.Time // the last handshake; zero: never connected
}

// HumanBytes is n in binary units, as wg(8) shows traffic: "1.50 MiB".
func HumanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.2f %s", v, units[u])
}

// Total is the month's traffic both ways.
func (u Usage) Total() int64 { return u.Received + u.Transmitted }

// ConnectionCheckAfter is how long after its config was delivered a
// device that has not connected gets its user troubleshooting steps.
const ConnectionCheckAfter = 15 * time.Minute

// Consumer is one user's traffic this month over all their devices.
type Consumer struct {
	TelegramID int64
	Username   string
	Usage
}

// Quota is a subscription's traffic allowance for one calendar month
// (UTC) and what its devices used of it.
type Quota struct {
	SubscriptionID int64
	UserID         int64
	TelegramID     int64
	Username       string
	Month          time.Time // the first day of the month, UTC
	// Allowance is the plan's monthly quota plus this month's top-ups, in
	// bytes; 0: unlimited.
	Allowance int64
	Used      int64 // bytes in and out over all the subscription's devices
	Disabled  bool  // its devices are off until the next month or a top-up
}

// Level is how far Used has gone into Allowance (QuotaLevel).
func (q Quota) Level() int { return QuotaLevel(q.Used, q.Allowance) }

// QuotaCheck is what one pass of the quota check did.
type QuotaCheck struct {
	Notices  int // 80% and 100% notices queued
	Disabled int // devices switched off: their subscription used its month
	Enabled  int // devices back on: a new month, a top-up or a larger plan
	Changes  []Change
}
