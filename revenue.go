package wgbot

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Ledger kinds: every credit is one row of the payments ledger (I10). A
// payment is money; a referral bonus and promo days are time given with no
// money, each under its own UNIQUE key so it is given at most once.
const (
	LedgerPayment  = "payment"
	LedgerReferral = "referral"
	LedgerPromo    = "promo"
)

// The providers the ledger names for credits that are not money.
const (
	ProviderReferral = "referral"
	ProviderPromo    = "promo"
)

// ReferralBonus is how many days each side of a referral gets when the
// invited user's first payment is credited; 0 turns that side off.
type ReferralBonus struct {
	ReferrerDays int // the user whose link was followed
	InvitedDays  int // the user who followed it and paid
}

// ReferralCodePattern is what a personal referral code looks like: it
// travels in a deep link (/start ref_<code>), whose payload Telegram
// limits to 64 characters of A-Z, a-z, 0-9, _ and -.
var ReferralCodePattern = regexp.MustCompile(`^[a-z0-9]{6,16}$`)

// ReferralStats is what "Invite friends" shows a user.
type ReferralStats struct {
	Code        string
	Invited     int64 // users who joined through the link
	Paid        int64 // of those, who paid, earning the bonus
	DaysEarned  int64 // bonus days kept (not taken back by a refund)
	BonusActive bool  // REFERRAL_BONUS_DAYS gives the referrer something
}

// Promo code kinds.
const (
	PromoDays    = "days"    // Value free days, applied at once
	PromoPercent = "percent" // Value percent off the next order
	PromoFixed   = "fixed"   // Value minor units of Currency off the next order
)

// Promo is a promo code an operator created.
type Promo struct {
	ID       int64
	Code     string // upper case; matched case-insensitively
	Kind     string
	Value    int64
	Currency string   // PromoFixed only
	Plans    []string // the plans a discount applies to; empty: every plan
	MaxUses  int      // redemptions in all; 0: no limit
	PerUser  int      // redemptions per user (default 1)
	Uses     int      // redemptions so far
	NewUsers bool     // only for users who never paid
	Expires  time.Time
	Disabled bool
	Created  time.Time
}

// MaxPromoDays is the most days a free-days code gives: a year.
const MaxPromoDays = 365

var promoCodePattern = regexp.MustCompile(`^[A-Z0-9_-]{3,32}$`)

// NormalizePromoCode is a code as typed, in the form it is stored and
// matched: trimmed and upper-case.
func NormalizePromoCode(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// ValidPromoCode says whether code (normalized) can be a promo code: 3-32
// characters of A-Z, 0-9, _ and -.
func ValidPromoCode(code string) bool { return promoCodePattern.MatchString(code) }

// PreparePromo is a code an operator typed in the form it is stored
// (code and currency upper-case, one use per user unless said), checked
// by ValidatePromo: the bot's /promoadd and `wgbot promo add` both call it.
func PreparePromo(p Promo, plans []string) (Promo, error) {
	p.Code = NormalizePromoCode(p.Code)
	p.Currency = strings.ToUpper(strings.TrimSpace(p.Currency))
	if p.PerUser == 0 {
		p.PerUser = 1
	}
	return p, ValidatePromo(p, plans)
}

// ValidatePromo checks a code an operator creates; plans are the names
// on sale, which a code's plans must be among.
func ValidatePromo(p Promo, plans []string) error {
	switch {
	case !ValidPromoCode(p.Code):
		return Errorf(EInvalid, "bad_promo", "code %q: want 3-32 characters of A-Z, 0-9, _ and -", p.Code)
	case p.Kind == PromoDays && (p.Value < 1 || p.Value > MaxPromoDays):
		return Errorf(EInvalid, "bad_promo", "free days must be from 1 to %d, got %d", MaxPromoDays, p.Value)
	case p.Kind == PromoPercent && (p.Value < 1 || p.Value > 99):
		// 100 % would make an order of nothing, which no provider charges.
		return Errorf(EInvalid, "bad_promo", "a percent discount must be from 1 to 99, got %d", p.Value)
	case p.Kind == PromoFixed && (p.Value < 1 || p.Currency == ""):
		return Errorf(EInvalid, "bad_promo", "a fixed discount needs a positive amount in minor units and a currency")
	case p.Kind != PromoDays && p.Kind != PromoPercent && p.Kind != PromoFixed:
		return Errorf(EInvalid, "bad_promo", "kind must be %s, %s or %s", PromoDays, PromoPercent, PromoFixed)
	case p.Kind != PromoFixed && p.Currency != "":
		return Errorf(EInvalid, "bad_promo", "only a fixed discount has a currency")
	case p.Kind == PromoDays && len(p.Plans) > 0:
		return Errorf(EInvalid, "bad_promo", "free days apply to no plan; plans are for discounts")
	case p.MaxUses < 0 || p.PerUser < 1:
		return Errorf(EInvalid, "bad_promo", "uses must be 0 (no limit) or more, uses per user 1 or more")
	case p.MaxUses > 0 && p.PerUser > p.MaxUses:
		return Errorf(EInvalid, "bad_promo", "uses per user (%d) exceed the uses in all (%d)", p.PerUser, p.MaxUses)
	}
	for _, name := range p.Plans {
		if !slices.Contains(plans, name) {
			return Errorf(EInvalid, "bad_promo", "no plan named %q on sale", name)
		}
	}
	return nil
}

// Errors of promo codes; match with errors.Is.
var (
	ErrPromoNotFound = &Error{Code: ENotFound, Reason: "promo_not_found", Message: "no such promo code"}
	ErrPromoExpired  = &Error{Code: EConflict, Reason: "promo_expired", Message: "the promo code has expired"}
	ErrPromoDisabled = &Error{Code: EConflict, Reason: "promo_disabled", Message: "the promo code is disabled"}
	ErrPromoUsedUp   = &Error{Code: EConflict, Reason: "promo_used_up", Message: "the promo code has no uses left"}
	ErrPromoRepeated = &Error{Code: EConflict, Reason: "promo_repeated", Message: "the user has used this promo code as often as allowed"}
	ErrPromoNewOnly  = &Error{Code: EConflict, Reason: "promo_new_only", Message: "the promo code is for new users only"}
	ErrPromoPending  = &Error{Code: EConflict, Reason: "promo_pending", Message: "the user has a discount waiting for the next order"}
	ErrPromoExists   = &Error{Code: EConflict, Reason: "promo_exists", Message: "a promo code with that name exists"}
)

// CanRedeem says whether a user may redeem p at now, having redeemed it
// used times already and having paid before or not: the reasons are
// checked in the order a user can act on them.
func (p Promo) CanRedeem(now time.Time, used int, paid bool) error {
	switch {
	case p.Disabled:
		return ErrPromoDisabled
	case !p.Expires.IsZero() && !now.Before(p.Expires):
		return ErrPromoExpired
	case p.MaxUses > 0 && p.Uses >= p.MaxUses:
		return ErrPromoUsedUp
	case used >= max(p.PerUser, 1):
		return ErrPromoRepeated
	case p.NewUsers && paid:
		return ErrPromoNewOnly
	}
	return nil
}

// Discount is a discount a user redeemed and has not yet paid with.
type Discount struct {
	RedemptionID int64
	Code         string
	Kind         string // PromoPercent or PromoFixed
	Value        int64
	Currency     string
	Plans        []string
}

// Applies says whether the discount is for an order of plan in currency.
func (d Discount) Applies(plan, currency string) bool {
	if len(d.Plans) > 0 && !slices.Contains(d.Plans, plan) {
		return false
	}
	return d.Kind != PromoFixed || d.Currency == currency
}

// Price is what an order of price minor units costs with the discount,
// in integer arithmetic (no float touches money): a percent takes off the
// whole minor units it comes to, rounded down, and the price never falls
// below one minor unit, the least any provider (Stars included) charges.
func (d Discount) Price(price int64) int64 {
	off := d.Value
	if d.Kind == PromoPercent {
		off = price * d.Value / 100
	}
	return max(price-off, 1)
}

// String is the discount as an operator reads it.
func (d Discount) String() string {
	if d.Kind == PromoPercent {
		return fmt.Sprintf("%s: %d%% off", d.Code, d.Value)
	}
	return fmt.Sprintf("%s: %d %s off", d.Code, d.Value, d.Currency)
}

// Redemption is what redeeming a promo code did.
type Redemption struct {
	Promo        Promo
	Discount     *Discount    // a discount, waiting for the next order
	Days         int          // free days given at once
	Subscription Subscription // after the free days
	NewPeer      *Peer        // set when the free days issued the first device
	Change       Change       // the server revision the new device is in
}
