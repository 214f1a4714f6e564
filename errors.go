package wgbot

import (
	"errors"
	"fmt"
)

// Error kinds. Each transport maps them in one place: a Telegram user gets a
// translated sentence, an HTTP client a status code, the log the details.
const (
	EInvalid     = "invalid"
	ENotFound    = "not_found"
	EConflict    = "conflict"
	EUnavailable = "unavailable"
	EInternal    = "internal"
)

// Error is a failure a user may be told about: Code decides how, Message is
// safe to show to an operator (never to a user verbatim: translate by Code
// and Reason).
type Error struct {
	Code    string
	Reason  string // stable machine-readable reason, e.g. "trial_used"
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is match on Reason, so callers can test for ErrTrialUsed
// even when the message carries details.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason != "" && t.Reason == e.Reason
}

// Errorf returns an *Error of the given kind.
func Errorf(code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the kind of err; anything that is not an *Error is internal.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	}
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorReason returns the reason of an *Error in err's chain, or "".
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// Errors the rules produce; match with errors.Is.
var (
	ErrTrialUsed       = &Error{Code: EConflict, Reason: "trial_used", Message: "the free trial was already used"}
	ErrHasAccess       = &Error{Code: EConflict, Reason: "has_access", Message: "the user already has an active subscription"}
	ErrDeviceLimit     = &Error{Code: EConflict, Reason: "device_limit", Message: "the plan's device limit is reached"}
	ErrNoSubscription  = &Error{Code: ENotFound, Reason: "no_subscription", Message: "the user has no active subscription"}
	ErrPeerNotFound    = &Error{Code: ENotFound, Reason: "peer_not_found", Message: "no such device"}
	ErrUserNotFound    = &Error{Code: ENotFound, Reason: "user_not_found", Message: "no such user"}
	ErrNoFreeAddress   = &Error{Code: EUnavailable, Reason: "no_free_address", Message: "no free addresses"}
	ErrBanned          = &Error{Code: EInvalid, Reason: "banned", Message: "the user is banned"}
	ErrUserBlocked     = &Error{Code: EUnavailable, Reason: "user_blocked", Message: "the user blocked the bot"}
	ErrOrderNotFound   = &Error{Code: ENotFound, Reason: "order_not_found", Message: "no such order"}
	ErrPaymentNotFound = &Error{Code: ENotFound, Reason: "payment_not_found", Message: "no such payment"}
	ErrPaymentMismatch = &Error{Code: EInvalid, Reason: "payment_mismatch", Message: "the payment does not match its order"}
	ErrApplyFailed     = &Error{Code: EUnavailable, Reason: "apply_failed", Message: "the VPN server could not be updated"}
	ErrNoServer        = &Error{Code: EUnavailable, Reason: "no_server", Message: "no healthy server takes new peers"}
	ErrTrialDisabled   = &Error{Code: EInvalid, Reason: "trial_disabled", Message: "the free trial is turned off"}
	ErrUnknownPlan     = &Error{Code: EInvalid, Reason: "unknown_plan", Message: "no such plan"}
	ErrNoPrice         = &Error{Code: EInvalid, Reason: "no_price", Message: "the plan has no price in that currency"}
	// ErrNoClientKey: an imported device whose private key only its client
	// ever had; its config cannot be shown, and the one it has keeps working.
	ErrNoClientKey     = &Error{Code: EInvalid, Reason: "no_client_key", Message: "the device was imported without its private key: its config cannot be shown again; the config it has keeps working"}
	ErrClaimUnknown    = &Error{Code: ENotFound, Reason: "claim_unknown", Message: "no such claim link"}
	ErrClaimUsed       = &Error{Code: EConflict, Reason: "claim_used", Message: "the claim link was already used"}
	ErrOrderClosed     = &Error{Code: EConflict, Reason: "order_closed", Message: "the order is no longer open"}
	ErrDeviceName      = &Error{Code: EInvalid, Reason: "device_name", Message: "a device name has 1 to 24 printable characters and is not of the form device-N"}
	ErrDeviceNameTaken = &Error{Code: EConflict, Reason: "device_name_taken", Message: "another of the user's devices has that name"}
	ErrConfirmStale    = &Error{Code: EConflict, Reason: "confirm_stale", Message: "the user's subscription changed since the confirmation was asked"}
	ErrBroadcastSent   = &Error{Code: EConflict, Reason: "broadcast_sent", Message: "this preview was already sent"}
	ErrServerFull      = &Error{Code: EUnavailable, Reason: "server_full", Message: "the server reached its capacity"}
	ErrLocationDown    = &Error{Code: EUnavailable, Reason: "location_down", Message: "no server of the chosen location takes new peers"}
	ErrUnknownLocation = &Error{Code: EInvalid, Reason: "unknown_location", Message: "no such location"}
	ErrMoveInProgress  = &Error{Code: EConflict, Reason: "move_in_progress", Message: "a device moved before is still waiting for its old config to be removed"}
	ErrSameLocation    = &Error{Code: EInvalid, Reason: "same_location", Message: "the device is already in that location"}
)
