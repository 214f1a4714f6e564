package jobargs

import (
	"time"

	"github.com/riverqueue/river"
)

// RenewalFailed tells the user a saved card's renewal charge did not
// renew them, in the words of its outcome (wgbot.RenewalFailure), with a
// way to pay by hand. It is queued when the charge is recorded failed,
// once per charge.
type RenewalFailed struct {
	OrderID   int64     `json:"order_id"`
	Outcome   string    `json:"outcome"`
	PeriodEnd time.Time `json:"period_end"` // the expiry the charge was to renew
}

func (RenewalFailed) Kind() string { return "renewal_failed" }

func (RenewalFailed) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// GiftReady gives a gift's buyer its link, queued in the transaction that
// credits the gift's payment, so a crash after the commit still delivers
// it.
type GiftReady struct {
	GiftID int64 `json:"gift_id"`
}

func (GiftReady) Kind() string { return "gift_ready" }

func (GiftReady) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// BonusTakenBack tells a referrer that a refund of their friend's payment
// took back the referral bonus it had earned them: LedgerID is the
// bonus's ledger row, Days what was taken (rounded up).
type BonusTakenBack struct {
	LedgerID int64 `json:"ledger_id"`
	Days     int   `json:"days"`
}

func (BonusTakenBack) Kind() string { return "bonus_taken_back" }

func (BonusTakenBack) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}
