package telegram

import (
	"context"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/jobs"
	"wgbot/service"
)

// Screen is one of the bot's own screens a notification button opens.
type Screen int

// Screens a notification button can open.
const (
	ScreenMenu Screen = iota + 1
	ScreenBuy
	ScreenSubscription
)

// Button is an inline button under a notification: a link when URL is
// set, else the bot's Screen.
type Button struct {
	Text   string
	URL    string
	Screen Screen
}

// The methods below send through the bot's sender: rate-limited, retried,
// a 403 marks the user blocked and returns an error matching ErrBlocked
// (and wgbot.ErrUserBlocked). They do not need Run to be running. The
// exported ones are for the job queue (service.Notifier and the delivery
// and broadcast interfaces).

// notify sends text to a user as it is (the caller translates it), with
// buttons one per row.
func (b *Bot) notify(ctx context.Context, telegramID int64, text string, buttons ...Button) error {
	var kb *models.InlineKeyboardMarkup
	if len(buttons) > 0 {
		kb = keyboard()
		for _, btn := range buttons {
			if btn.URL != "" {
				kb.InlineKeyboard = append(kb.InlineKeyboard, row(linkButton(btn.Text, btn.URL)))
				continue
			}
			act := map[Screen]action{ScreenMenu: actMenu, ScreenBuy: actBuy, ScreenSubscription: actSubscription}[btn.Screen]
			if act == 0 {
				act = actMenu
			}
			kb.InlineKeyboard = append(kb.InlineKeyboard, row(button(btn.Text, callback{act: act, fresh: true})))
		}
	}
	return b.sendText(ctx, telegramID, text, kb)
}

// The bot sends new devices' configs for the device_issued jobs.
var _ service.DeviceNotifier = (*Bot)(nil)

// DeviceIssued sends a newly issued device's config to its user, in their
// language, with the words for why it was issued (service.DeviceNotifier).
// The issuing request and the device's job both send through it, so the
// user reads the same whichever sent it.
func (b *Bot) DeviceIssued(ctx context.Context, n service.DeviceNotice) error {
	lang := normalizeLang(n.User.Language)
	until := b.until(lang, n.Delivery.Subscription.ExpiresAt)
	intro := ""
	switch n.Reason {
	case service.IssuedTrial:
		intro = b.t.get(lang, mTrialIssued, until)
	case service.IssuedGrant:
		intro = b.t.get(lang, mGranted, b.t.days(lang, n.Days), until)
	case service.IssuedReferral:
		intro = b.t.get(lang, mBonusReferrer, b.t.days(lang, n.Days), until)
	case service.IssuedPromo:
		intro = b.t.get(lang, mPromoIssued, b.t.days(lang, n.Days), until)
	case service.IssuedGift:
		intro = b.t.get(lang, mGiftIssued, b.t.days(lang, n.Days), until)
	case service.IssuedMoved:
		intro = b.movedIntro(ctx, lang, n.Delivery)
	}
	if err := b.deliver(ctx, n.User.TelegramID, lang, n.Delivery, intro, false); err != nil || n.Replaces == 0 {
		return err
	}
	// The config is out: a failure to send the button is only logged, as
	// the old peer goes by itself after its grace.
	if err := b.movedFollowUp(ctx, n.User.TelegramID, lang, n.Replaces); err != nil {
		b.log.Warn("telegram: moved device's follow-up not sent", "user", n.User.TelegramID, "err", err)
	}
	return nil
}

// sendIssued sends a newly issued device's config now, unless its job did
// already; if the send fails, the job sends it later.
func (b *Bot) sendIssued(ctx context.Context, n service.DeviceNotice) {
	if _, err := b.svc.SendIssued(ctx, n.Delivery.Peer.ID, func(ctx context.Context) error { return b.DeviceIssued(ctx, n) }); err != nil {
		b.log.Warn("telegram: config not sent now; its job sends it later", "peer", n.Delivery.Peer.ID, "user", n.User.TelegramID, "err", err)
	}
}

// NotifyExpired tells a user their subscription has ended, with a button
// to buy; lang is the user's stored language.
func (b *Bot) NotifyExpired(ctx context.Context, telegramID int64, lang string) error {
	lang = normalizeLang(lang)
	return b.sendText(ctx, telegramID, b.t.get(lang, mSubscriptionEnded), b.notice(lang))
}

// The bot is the service's Notifier: the job queue tells users about
// credited payments, expiry and coming expiry through it.
var _ service.Notifier = (*Bot)(nil)

// PaymentCredited tells a user about a credited payment (service.Notifier):
// the new device's config when it issued one, else the new expiry date.
func (b *Bot) PaymentCredited(ctx context.Context, user wgbot.User, sub wgbot.Subscription, d *service.Delivery) error {
	res := service.CreditResult{Delivery: d}
	res.Subscription = sub
	return b.confirmPayment(ctx, user.TelegramID, normalizeLang(user.Language), res)
}

// SubscriptionExpired tells a user their subscription has ended
// (service.Notifier).
func (b *Bot) SubscriptionExpired(ctx context.Context, user wgbot.User, _ wgbot.Subscription) error {
	return b.NotifyExpired(ctx, user.TelegramID, user.Language)
}

// The bot tells users about cancelled checkouts for the job queue.
var _ jobs.CheckoutNotifier = (*Bot)(nil)

// CheckoutCanceled tells a user their payment did not go through, with a
// button to try again (jobs.CheckoutNotifier).
func (b *Bot) CheckoutCanceled(ctx context.Context, user wgbot.User, order wgbot.Order) error {
	lang := normalizeLang(user.Language)
	text := b.t.get(lang, mCheckoutCanceled, formatAmount(order.Amount, order.Currency))
	return b.sendText(ctx, user.TelegramID, text, b.tryAgain(lang))
}

// The bot sends the connection check's tip for the job queue.
var _ jobs.ConnectionNotifier = (*Bot)(nil)

// ConnectionTip tells a user how to get a device connected that has not
// connected since its config was sent (jobs.ConnectionNotifier).
func (b *Bot) ConnectionTip(ctx context.Context, user wgbot.User, device wgbot.Peer) error {
	lang := normalizeLang(user.Language)
	return b.sendText(ctx, user.TelegramID, b.t.get(lang, mConnectionTip, device.Name),
		keyboard(row(button(b.t.get(lang, mBtnSub), callback{act: actSubscription, fresh: true}))))
}

// The bot tells users about outage credits for the job queue.
var _ jobs.OutageNotifier = (*Bot)(nil)

// OutageCredited tells a user that the downtime of a server their device
// is on was added to their subscription (jobs.OutageNotifier).
func (b *Bot) OutageCredited(ctx context.Context, user wgbot.User, sub wgbot.Subscription, location string, minutes int) error {
	lang := normalizeLang(user.Language)
	span := b.t.span(lang, minutes)
	return b.sendText(ctx, user.TelegramID, b.t.get(lang, mOutageCredited, location, span, span, formatDate(sub.ExpiresAt)), b.notice(lang))
}

// ExpiryReminder reminds a user that their subscription ends in daysLeft
// days, with a button to extend it (service.Notifier).
func (b *Bot) ExpiryReminder(ctx context.Context, user wgbot.User, sub wgbot.Subscription, daysLeft int) error {
	lang := normalizeLang(user.Language)
	text := b.t.get(lang, mExpiresSoon, formatDate(sub.ExpiresAt), b.t.days(lang, max(daysLeft, 1)))
	// Telegram charges a live Stars subscription by itself: nothing to pay.
	if star, err := b.svc.StarSubscription(ctx, user); err == nil && !star.Canceled {
		text = b.t.get(lang, mRenewsSoon, formatDate(star.RenewsAt), b.t.days(lang, max(daysLeft, 1)))
	}
	return b.sendText(ctx, user.TelegramID, text, b.notice(lang))
}
