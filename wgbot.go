// Package wgbot holds the domain types every part of the product shares:
// users, plans, subscriptions, peers and servers, and the small set of error
// kinds that decide what a user or a client is told.
package wgbot

import (
	"math"
	"net/netip"
	"time"
)

// User is one Telegram account.
type User struct {
	ID         int64
	TelegramID int64
	Username   string
	FirstName  string
	Language   string
	ReferrerID int64 // 0: none
	BlockedBot bool
	Banned     bool
	CreatedAt  time.Time
}

// Plan is what a user can buy: a duration, a device limit and its prices.
type Plan struct {
	Name    string           `json:"name"`
	Days    int              `json:"days"`
	Devices int              `json:"devices"`
	Prices  map[string]int64 `json:"prices"` // currency → amount in minor units (XTR: stars)
	// Titles are the plan's names for people, by language ("en", "ru"):
	// "Month", "Месяц". Without one the bot names the plan by its days;
	// Name is an id users never see.
	Titles map[string]string `json:"titles,omitempty"`
	// TrafficGB is the monthly traffic quota (decimal GB, in and out
	// together) of a subscription bought with this plan, over all its
	// devices; 0: unlimited. Fractions are allowed (0.005 is 5 MB).
	TrafficGB float64 `json:"traffic_gb,omitempty"`
	// Kind is "" for a subscription plan, PlanTopUp for a traffic top-up:
	// TopUpGB more for the current month, no days, no devices.
	Kind    string  `json:"kind,omitempty"`
	TopUpGB float64 `json:"topup_gb,omitempty"`
}

// PlanTopUp is the Kind of a plan that sells traffic, not time.
const PlanTopUp = "topup"

// IsTopUp says whether the plan sells traffic for the month, not time.
func (p Plan) IsTopUp() bool { return p.Kind == PlanTopUp }

// QuotaBytes is the monthly quota a subscription bought with the plan
// carries, in bytes; 0: unlimited.
func (p Plan) QuotaBytes() int64 { return GB(p.TrafficGB) }

// TopUpBytes is what a top-up adds to the month's allowance, in bytes.
func (p Plan) TopUpBytes() int64 { return GB(p.TopUpGB) }

// GB is gb decimal gigabytes in bytes.
func GB(gb float64) int64 { return int64(math.Round(gb * 1e9)) }

// Subscription statuses.
const (
	SubscriptionActive  = "active"
	SubscriptionExpired = "expired"
	SubscriptionRevoked = "revoked"
)

// Subscription is a user's access period; renewals extend the live one.
type Subscription struct {
	ID          int64
	UserID      int64
	Plan        string
	IsTrial     bool // created by the free trial
	Status      string
	DeviceLimit int
	StartsAt    time.Time
	ExpiresAt   time.Time
}

// Peer statuses.
const (
	PeerActive   = "active"
	PeerDisabled = "disabled" // subscription expired or its traffic used up; address kept
	PeerRevoked  = "revoked"
)

// Peer is one device: a WireGuard peer with its tunnel addresses.
type Peer struct {
	ID             int64
	SubscriptionID int64
	ServerID       int64
	Name           string
	Number         int // the user's own count of devices issued, this one's: never repeated
	IP             netip.Addr
	IP6            netip.Addr // invalid when the server has no IPv6 prefix
	PublicKey      string
	Status         string
	CreatedAt      time.Time
	// RetireAt is set on a device moved to another location: its old peer
	// is revoked then, or when the user confirms the new one.
	RetireAt time.Time
}

// PeerSecrets are a peer's private and preshared keys, sealed at rest.
type PeerSecrets struct {
	PublicKey        string
	PrivateKeySealed []byte
	PresharedSealed  []byte
	KeyID            string
	// NodeSealed is the preshared key sealed to the node key NodeKey (the
	// public key, base64) of the peer's server, for its `wgbot node`,
	// which has no master key; NodeKey is "" until serve sealed it.
	NodeSealed []byte
	NodeKey    string
}

// Location is a place users pick for their devices: the servers that
// carry its name (servers add --location).
type Location struct {
	Name string
	// ServerID is one of its servers; buttons carry it, not the name,
	// which may be any text.
	ServerID  int64
	ServerIDs []int64 // all its active servers, ServerID first
	Up        bool    // a new device can go there now
}

// Server is a WireGuard interface that peers are issued on.
type Server struct {
	ID        int64
	Name      string
	Interface string
	Endpoint  string
	Subnet    netip.Prefix
	Subnet6   netip.Prefix
	Address   netip.Addr // the server's own tunnel address
	PublicKey string
	DNS       []string
	MTU       int
}

// Change names the server revision a committed change produced; a caller
// waits for the reconcile that covers it before telling the user.
type Change struct {
	ServerID int64
	Revision int64
}

// Order statuses.
const (
	OrderPending  = "pending"
	OrderPaid     = "paid"
	OrderCanceled = "canceled"
	OrderRefunded = "refunded"
)

// Order is what a user chose to buy, with the price the provider must
// confirm before anything is credited.
type Order struct {
	ID       int64
	UserID   int64
	Plan     string
	Days     int
	Devices  int
	Provider string
	Amount   int64 // minor units: what the provider charges, after any discount
	Currency string
	// Discount is what a promo code took off the plan's price (minor
	// units), and RedemptionID the redemption it came from (0: none).
	Discount     int64
	RedemptionID int64
	Status       string
	ProviderRef  string // the provider's id of the checkout, once created
	CheckoutURL  string // where the payer pays, once the checkout is created; shown again on a second press
	// CheckoutTries counts attempts to create the checkout; above one, an
	// earlier attempt may have made one whose answer was lost.
	CheckoutTries int
	CreatedAt     time.Time
	ExpiresAt     time.Time
	Gift          bool // bought for someone else: its payment makes a gift
	// Traffic is, for a plan, the monthly quota it sells (bytes, 0:
	// unlimited); for a top-up (TopUp), the bytes it adds to the month.
	Traffic int64
	TopUp   bool
	// SaveCard: the payer agreed at checkout to renewals from the card
	// this order is paid with (YooKassa's save_payment_method).
	SaveCard bool
}
