// Package jobargs holds the arguments of wgbot's River jobs: the store
// inserts them in the same transaction as the change they follow (an
// outbox), and package jobs works them. It imports nothing of wgbot's, so
// both sides can use it.
package jobargs

import (
	"time"

	"github.com/riverqueue/river"
)

// PaymentCredited tells the user about a credited payment.
type PaymentCredited struct {
	PaymentID int64 `json:"payment_id"`
}

func (PaymentCredited) Kind() string { return "payment_credited" }

func (PaymentCredited) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 20}
}

// Why a device was issued; it decides the words its config comes with.
const (
	IssuedTrial  = "trial"
	IssuedDevice = "device" // one more device on a live subscription
	IssuedGrant  = "grant"  // an operator's or admin's gift of days
	// Days given with no payment to a user with no live subscription: a
	// referral bonus, or a promo code's free days.
	IssuedReferral = "referral"
	IssuedPromo    = "promo"
	IssuedGift     = "gift"  // a redeemed gift's days
	IssuedMoved    = "moved" // a device moved to another location
)

// DeviceIssued delivers a newly issued device's config to its user. It
// names the device by its public key, known before the allocator runs, so
// the job is inserted before the allocator's lock is taken (by every
// issuing path: trial, added device, grant) and adds no round trip while it
// is held. It is scheduled postgres.NewPeer.DeliverAfter ahead, when the issuing
// request has had its chance to send the config. A grant that issues no
// device leaves a job that finds no peer and ends. Days is the days
// granted, for a grant.
type DeviceIssued struct {
	PublicKey string `json:"public_key"`
	Reason    string `json:"reason"`
	Days      int    `json:"days,omitempty"`
	// Replaces is, for a moved device, the old peer that goes once the
	// user confirms the new one.
	Replaces int64 `json:"replaces,omitempty"`
}

func (DeviceIssued) Kind() string { return "device_issued" }

// MaxAttempts with River's backoff (attempt⁴ seconds) keeps retrying a
// WireGuard host that is down for about two days.
func (DeviceIssued) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 16} }

// SubscriptionExpired tells the user their access ended.
type SubscriptionExpired struct {
	SubscriptionID int64     `json:"subscription_id"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func (SubscriptionExpired) Kind() string { return "subscription_expired" }

func (SubscriptionExpired) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// CheckoutCanceled tells the user a provider's checkout was cancelled,
// with a way to try again.
type CheckoutCanceled struct {
	OrderID int64 `json:"order_id"`
}

func (CheckoutCanceled) Kind() string { return "checkout_canceled" }

func (CheckoutCanceled) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// Reminder reminds the user DaysBefore days before ExpiresAt. A
// renewal may move the expiry after the job was queued, so the worker sends
// only if the subscription still ends at ExpiresAt.
type Reminder struct {
	SubscriptionID int64     `json:"subscription_id"`
	ExpiresAt      time.Time `json:"expires_at"`
	DaysBefore     int       `json:"days_before"`
}

func (Reminder) Kind() string { return "expiry_reminder" }

func (Reminder) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// ConnectionTip sends a device's user short troubleshooting steps: the
// device has not connected since its config was delivered (the store's
// connection check queues it once per device).
type ConnectionTip struct {
	PeerID int64 `json:"peer_id"`
}

func (ConnectionTip) Kind() string { return "connection_tip" }

func (ConnectionTip) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// BroadcastQueue is the River queue broadcast chunks run in, apart from the
// default queue so a long broadcast never holds up payment notices.
const BroadcastQueue = "broadcast"

// BroadcastChunk sends a broadcast to the pending recipients of one chunk.
type BroadcastChunk struct {
	BroadcastID int64 `json:"broadcast_id"`
	Chunk       int   `json:"chunk"`
}

func (BroadcastChunk) Kind() string { return "broadcast_chunk" }

func (BroadcastChunk) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: BroadcastQueue, UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 25}
}

// BroadcastReport tells the admin how a finished broadcast went.
type BroadcastReport struct {
	BroadcastID int64 `json:"broadcast_id"`
}

func (BroadcastReport) Kind() string { return "broadcast_report" }

func (BroadcastReport) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// QuotaNotice tells a user their subscription's traffic this month reached
// Level percent (80 or 100) of its allowance, with a way to buy more. The
// store's quota check queues it once per subscription, month, allowance
// and level (quota_notices).
type QuotaNotice struct {
	SubscriptionID int64     `json:"subscription_id"`
	Month          time.Time `json:"month"` // the first day of the month, UTC
	Allowance      int64     `json:"allowance"`
	Level          int       `json:"level"`
}

func (QuotaNotice) Kind() string { return "quota_notice" }

func (QuotaNotice) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// OutageCredited tells a user that their subscription got the downtime of
// a server they had a device on back: Credit minutes, in Location. One
// per subscription and outage, queued with the credit.
type OutageCredited struct {
	OutageID       int64  `json:"outage_id"`
	SubscriptionID int64  `json:"subscription_id"`
	Location       string `json:"location"`
	Minutes        int    `json:"minutes"`
}

func (OutageCredited) Kind() string { return "outage_credited" }

func (OutageCredited) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}
