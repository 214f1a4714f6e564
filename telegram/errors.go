package telegram

import (
	"context"
	"errors"
	"log/slog"

	"wgbot"
)

// reasonTexts is what a user is told for each error reason.
var reasonTexts = map[string]msg{
	wgbot.ErrTrialUsed.Reason:            mErrTrialUsed,
	wgbot.ErrHasAccess.Reason:            mErrHasAccess,
	wgbot.ErrTrialDisabled.Reason:        mErrTrialOff,
	wgbot.ErrDeviceLimit.Reason:          mErrDeviceLimit,
	wgbot.ErrNoSubscription.Reason:       mErrNoSub,
	wgbot.ErrNoStarSubscription.Reason:   mErrNoStarSub,
	wgbot.ErrGiftRedeemed.Reason:         mErrGiftRedeemed,
	wgbot.ErrGiftRefunded.Reason:         mErrGiftRefunded,
	wgbot.ErrGiftNotFound.Reason:         mErrGiftNotFound,
	wgbot.ErrNoFreeAddress.Reason:        mErrNoAddress,
	wgbot.ErrNoServer.Reason:             mErrNoServer,
	wgbot.ErrLocationDown.Reason:         mErrLocationDown,
	wgbot.ErrServerFull.Reason:           mErrNoAddress,
	wgbot.ErrUnknownLocation.Reason:      mOutdated,
	wgbot.ErrMoveInProgress.Reason:       mErrMoveInProgress,
	wgbot.ErrSameLocation.Reason:         mErrSameLocation,
	wgbot.ErrBanned.Reason:               mErrBanned,
	wgbot.ErrApplyFailed.Reason:          mErrApplyFailed,
	wgbot.ErrOrderClosed.Reason:          mErrOrderClosed,
	wgbot.ErrOrderNotFound.Reason:        mErrOrderGone,
	errNotOurInvoice.Reason:              mErrOrderGone,
	errCheckoutStart.Reason:              mErrCheckoutStart,
	wgbot.ErrNoPrice.Reason:              mErrNoPrice,
	wgbot.ErrUnknownPlan.Reason:          mOutdated,
	wgbot.ErrPaymentMismatch.Reason:      mErrMismatch,
	wgbot.ErrDeviceName.Reason:           mErrDeviceName,
	wgbot.ErrDeviceNameTaken.Reason:      mErrDeviceNameTaken,
	wgbot.ErrPromoNotFound.Reason:        mErrPromoNotFound,
	wgbot.ErrPromoExpired.Reason:         mErrPromoExpired,
	wgbot.ErrPromoDisabled.Reason:        mErrPromoDisabled,
	wgbot.ErrPromoUsedUp.Reason:          mErrPromoUsedUp,
	wgbot.ErrPromoRepeated.Reason:        mErrPromoRepeated,
	wgbot.ErrPromoNewOnly.Reason:         mErrPromoNewOnly,
	wgbot.ErrPromoPending.Reason:         mErrPromoPending,
	wgbot.ErrClaimUsed.Reason:            mClaimUsed,
	wgbot.ErrClaimUnknown.Reason:         mClaimUnknown,
	wgbot.ErrReceiptContactNeeded.Reason: mReceiptAsk,
	wgbot.ErrReceiptContact.Reason:       mErrReceiptContact,
}

// kindTexts is what a user is told for an error of a kind with no
// reason of its own.
var kindTexts = map[string]msg{
	wgbot.ENotFound:    mErrNotFound,
	wgbot.EInvalid:     mErrInvalid,
	wgbot.EConflict:    mErrConflict,
	wgbot.EUnavailable: mErrUnavailable,
}

// userError is the one place that decides what a user is told when a
// request fails: a catalogue text chosen by the error's reason, else its
// kind. The error's own text never reaches the user; the log has it.
func userError(err error) msg {
	if m, ok := reasonTexts[wgbot.ErrorReason(err)]; ok {
		return m
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return mErrUnavailable
	}
	if m, ok := kindTexts[wgbot.ErrorCode(err)]; ok {
		return m
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
