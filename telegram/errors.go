package telegram

import (
	"context"
	"errors"
	"log/slog"

	"wgbot"
)

// userError is the one place that decides what a user is told when a
// request fails: a catalogue text chosen by the error's reason, else its
// kind. The error's own text never reaches the user; the log has it.
func userError(err error) msg {
	switch wgbot.ErrorReason(err) {
	case wgbot.ErrTrialUsed.Reason:
		return mErrTrialUsed
	case wgbot.ErrHasAccess.Reason:
		return mErrHasAccess
	case "trial_disabled":
		return mErrTrialOff
	case wgbot.ErrDeviceLimit.Reason:
		return mErrDeviceLimit
	case wgbot.ErrNoSubscription.Reason:
		return mErrNoSub
	case wgbot.ErrNoFreeAddress.Reason:
		return mErrNoAddress
	case wgbot.ErrBanned.Reason:
		return mErrBanned
	case wgbot.ErrApplyFailed.Reason:
		return mErrApplyFailed
	case "order_closed":
		return mErrOrderClosed
	case wgbot.ErrOrderNotFound.Reason, errNotOurInvoice.Reason:
		return mErrOrderGone
	case errCheckoutStart.Reason:
		return mErrCheckoutStart
	case "no_price":
		return mErrNoPrice
	case "unknown_plan":
		return mOutdated
	case wgbot.ErrPaymentMismatch.Reason:
		return mErrMismatch
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return mErrUnavailable
	}
	switch wgbot.ErrorCode(err) {
	case wgbot.ENotFound:
		return mErrNotFound
	case wgbot.EInvalid:
		return mErrInvalid
	case wgbot.EConflict:
		return mErrConflict
	case wgbot.EUnavailable:
		return mErrUnavailable
	}
	return mErrInternal
}

// logLevel is how loud a failed request is in the log: a rule saying no
// is routine, anything internal needs an operator.
func logLevel(err error) slog.Level {
	switch wgbot.ErrorCode(err) {
	case wgbot.EInvalid, wgbot.ENotFound, wgbot.EConflict:
		return slog.LevelInfo
	case wgbot.EUnavailable:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// logFailure records a failed request with its full error.
func (b *Bot) logFailure(ctx context.Context, op string, telegramID int64, err error) {
	b.log.Log(ctx, logLevel(err), "telegram: "+op+" failed", "user", telegramID, "err", err)
}
