package telegram

import (
	"context"
	"time"

	"wgbot"
)

// renewalFailureTexts are the words for each way a saved card's renewal
// can fail: each says truthfully whether money may have moved.
var renewalFailureTexts = map[wgbot.RenewalFailure]msg{
	wgbot.RenewalDeclined:    mRenewDeclined,
	wgbot.RenewalCardGone:    mRenewCardGone,
	wgbot.RenewalReleased:    mRenewReleased,
	wgbot.RenewalUnconfirmed: mRenewUnconfirmed,
}

// RenewalFailed tells a user their saved card's renewal did not renew
// them, in the words of its outcome, with a button to pay by hand
// (jobs.RevenueNotifier). until is the expiry the charge was to renew.
func (b *Bot) RenewalFailed(ctx context.Context, user wgbot.User, order wgbot.Order, outcome wgbot.RenewalFailure, until time.Time) error {
	lang := normalizeLang(user.Language)
	key, ok := renewalFailureTexts[outcome]
	if !ok {
		key = mRenewDeclined // an outcome this build does not know took nothing either
	}
	text := b.t.get(lang, key, formatAmount(order.Amount, order.Currency), formatDate(until))
	return b.sendText(ctx, user.TelegramID, text, keyboard(row(button(b.t.get(lang, mBtnPayByHand), callback{act: actBuy, fresh: true}))))
}

// BonusTakenBack tells a referrer that a refund of their friend's payment
// took back days of the bonus it had earned them (jobs.RevenueNotifier).
func (b *Bot) BonusTakenBack(ctx context.Context, user wgbot.User, sub wgbot.Subscription, days int) error {
	lang := normalizeLang(user.Language)
	if sub.Status != wgbot.SubscriptionActive {
		return b.sendText(ctx, user.TelegramID, b.t.get(lang, mBonusTakenBackEnd, b.t.days(lang, days)), b.notice(lang))
	}
	return b.sendText(ctx, user.TelegramID, b.t.get(lang, mBonusTakenBack, b.t.days(lang, days), b.until(lang, sub.ExpiresAt)), nil)
}
