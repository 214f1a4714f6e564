package wgbot

// RenewalFailure is why a saved card's renewal charge did not renew, as
// its user is told: each says truthfully whether money may have moved.
type RenewalFailure string

const (
	// RenewalDeclined: the bank refused the charge at once; nothing was
	// taken.
	RenewalDeclined RenewalFailure = "declined"
	// RenewalCardGone: the card expired or the payer withdrew the
	// permission; nothing was taken, and the card is not charged again.
	RenewalCardGone RenewalFailure = "card_gone"
	// RenewalReleased: the charge was pending at the bank and was then
	// canceled; nothing was taken, though the amount may have been held
	// and is released by the bank.
	RenewalReleased RenewalFailure = "released"
	// RenewalUnconfirmed: the charge stayed pending past the time its key
	// is remembered and wgbot gave up on it; the money may yet be taken,
	// and then it is credited when the provider confirms it.
	RenewalUnconfirmed RenewalFailure = "unconfirmed"
)

// ReasonUnconfirmed is the cancellation reason wgbot records for a charge
// it gave up on.
const ReasonUnconfirmed = "unconfirmed"

// ClassifyRenewalFailure names a failed charge's outcome from the
// provider's cancellation reason and whether the charge was seen pending
// before it was canceled.
func ClassifyRenewalFailure(reason string, wasPending bool) RenewalFailure {
	switch {
	case reason == ReasonUnconfirmed:
		return RenewalUnconfirmed
	case reason == "card_expired" || reason == "permission_revoked":
		return RenewalCardGone
	case wasPending:
		return RenewalReleased
	}
	return RenewalDeclined
}

// PermanentRenewalFailure says whether a card whose charge failed so must
// never be charged again.
func PermanentRenewalFailure(f RenewalFailure) bool { return f == RenewalCardGone }
