package wgbot

import (
	"regexp"
	"time"
)

// LedgerGift is a redeemed gift's row in the payments ledger, under
// ProviderGift and the key gift:<gift id>: given once, ever.
const (
	LedgerGift   = "gift"
	ProviderGift = "gift"
)

// GiftPrefix starts a gift link's /start payload: t.me/<bot>?start=gift_<token>.
const GiftPrefix = "gift_"

// GiftTokenPattern is what a gift token looks like: 16 random bytes in
// unpadded base64url, within the 64 characters a /start payload may have.
var GiftTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// Gift statuses.
const (
	GiftOpen     = "open"
	GiftRedeemed = "redeemed"
	GiftRefunded = "refunded"
)

// Gift is a plan one user paid for another: whoever opens its link first
// gets its days.
type Gift struct {
	ID         int64
	Token      string
	OrderID    int64
	PaymentID  int64 // the buyer's payment
	BuyerID    int64
	Plan       Plan // name, days and devices; no prices
	Status     string
	RedeemedBy int64 // 0 unless redeemed
	RedeemedAt time.Time
}

// Errors of gifts.
var (
	ErrGiftNotFound = &Error{Code: ENotFound, Reason: "gift_not_found", Message: "no such gift"}
	ErrGiftRedeemed = &Error{Code: EConflict, Reason: "gift_redeemed", Message: "the gift was already redeemed"}
	ErrGiftRefunded = &Error{Code: EConflict, Reason: "gift_refunded", Message: "the gift was refunded"}
)
