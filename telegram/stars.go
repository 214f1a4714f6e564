package telegram

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/go-telegram/bot/models"

	"wgbot"
)

// recurring reads a Stars subscription's charge from a successful
// payment; nil for a one-time payment.
func recurring(sp *models.SuccessfulPayment) *wgbot.Recurring {
	if !sp.IsRecurring {
		return nil
	}
	return &wgbot.Recurring{First: sp.IsFirstRecurring, ExpiresAt: time.Unix(int64(sp.SubscriptionExpirationDate), 0).UTC()}
}

// startSubscription opens an order for a monthly plan and sends the link
// of a Stars subscription invoice: Telegram charges it every 30 days, each
// charge carrying the order id, until the user or the bot cancels it.
func (b *Bot) startSubscription(ctx context.Context, r *request, planName string) {
	b.answer(ctx, r, "", false)
	plan, err := b.svc.Plan(planName)
	if err == nil && !wgbot.Renewable(plan) {
		err = wgbot.ErrUnknownPlan
	}
	if err != nil {
		b.fail(ctx, r, "choose subscription plan", err, b.buyKeyboard(r.lang))
		return
	}
	order, err := b.svc.CreateOrder(ctx, r.user, plan.Name, providerStars, currencyStars)
	if err != nil {
		b.fail(ctx, r, "create subscription order", err, b.buyKeyboard(r.lang))
		return
	}
	days, devices := b.t.days(r.lang, plan.Days), b.t.upToDevices(r.lang, plan.Devices)
	title := truncateRunes(b.t.get(r.lang, mInvoiceTitleMonthly), 32)
	description := truncateRunes(b.t.get(r.lang, mInvoiceDescriptionMonthly, days, devices), 255)
	link, err := b.createStarsSubscriptionLink(ctx, title, description, strconv.FormatInt(order.ID, 10), int(order.Amount))
	if err != nil {
		b.fail(ctx, r, "create subscription link", errors.Join(errCheckoutStart, err), b.buyKeyboard(r.lang))
		return
	}
	price := formatAmount(order.Amount, order.Currency)
	_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, mSubscribeLink, price, days), keyboard(
		row(linkButton(b.t.get(r.lang, mBtnSubscribe, price), link)),
		row(button(b.t.get(r.lang, mBtnBack), callback{act: actMenu})),
	))
}

// renewal is "My subscription"'s line about a live Stars subscription and
// the button that turns its renewal off or on; nothing without one.
func (b *Bot) renewal(ctx context.Context, r *request) (string, []models.InlineKeyboardButton) {
	star, err := b.svc.StarSubscription(ctx, r.user)
	if err != nil {
		if !errors.Is(err, wgbot.ErrNoStarSubscription) {
			b.logFailure(ctx, "read Stars subscription", r.user.TelegramID, err)
		}
		return "", nil
	}
	if star.Canceled {
		return b.t.get(r.lang, mRenewalOff, formatDate(star.RenewsAt)), row(button(b.t.get(r.lang, mBtnRenewOn), callback{act: actRenewOn}))
	}
	return b.t.get(r.lang, mRenewsOn, formatDate(star.RenewsAt)), row(button(b.t.get(r.lang, mBtnRenewOff), callback{act: actRenewOff}))
}

// setRenewal cancels or re-enables the renewal of the user's Stars
// subscription, Telegram first, and shows "My subscription" again.
func (b *Bot) setRenewal(ctx context.Context, r *request, canceled bool) {
	b.answer(ctx, r, "", false)
	star, err := b.svc.SetStarRenewal(ctx, r.user, canceled, func(ctx context.Context, chargeID string) error {
		return b.editStarSubscription(ctx, r.user.TelegramID, chargeID, canceled)
	})
	if err != nil {
		b.fail(ctx, r, "set Stars renewal", err, b.backTo(r.lang, actSubscription))
		return
	}
	notice := b.t.get(r.lang, mRenewalResumed, formatDate(star.RenewsAt))
	if canceled {
		notice = b.t.get(r.lang, mRenewalCanceled, formatDate(star.RenewsAt))
	}
	b.showSubscription(ctx, r, notice)
}
