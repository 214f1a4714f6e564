package telegram

import (
	"context"
	"fmt"
	"strconv"

	"wgbot"
	"wgbot/jobs"
	"wgbot/service"
)

// startGift opens a gift order for plan and sends its Stars invoice; the
// payment makes a one-time link for someone else instead of extending the
// buyer.
func (b *Bot) startGift(ctx context.Context, r *request, planName string) {
	b.answer(ctx, r, "", false)
	plan, err := b.svc.Plan(planName)
	if err != nil {
		b.fail(ctx, r, "choose gift plan", err, b.buyKeyboard(r.lang))
		return
	}
	order, err := b.svc.CreateGiftOrder(ctx, r.user, plan.Name, providerStars, currencyStars)
	if err != nil {
		b.fail(ctx, r, "create gift order", err, b.buyKeyboard(r.lang))
		return
	}
	days, devices := b.t.days(r.lang, plan.Days), b.t.upToDevices(r.lang, plan.Devices)
	title := truncateRunes(b.t.get(r.lang, mGiftInvoiceTitle, days), 32)
	description := truncateRunes(b.t.get(r.lang, mGiftInvoiceDescription, days, devices), 255)
	_ = b.sendStarsInvoice(ctx, r.chatID, title, description, strconv.FormatInt(order.ID, 10), int(order.Amount))
}

// The bot gives gifts' buyers their links for the gift_ready jobs.
var _ jobs.RevenueNotifier = (*Bot)(nil)

// GiftReady gives a gift's buyer its link to pass on
// (jobs.RevenueNotifier). It is sent by the job queued in the transaction
// that credited the gift's payment, so a crash between the credit and the
// send still delivers it.
func (b *Bot) GiftReady(ctx context.Context, buyer wgbot.User, g wgbot.Gift) error {
	name, err := b.username(ctx)
	if err != nil {
		return fmt.Errorf("gift %d's link: the bot's username is unknown: %w", g.ID, err)
	}
	lang := normalizeLang(buyer.Language)
	link := "https://t.me/" + name + "?start=" + wgbot.GiftPrefix + g.Token
	return b.sendText(ctx, buyer.TelegramID, b.t.get(lang, mGiftReady, b.t.days(lang, g.Plan.Days), link), b.backTo(lang, actMenu))
}

// redeemGift gives the user the gift whose link they opened: the first
// to open it gets the days; a new user gets a subscription and a device.
func (b *Bot) redeemGift(ctx context.Context, r *request, token string) {
	res, err := b.svc.RedeemGift(ctx, r.user, token)
	if err != nil {
		b.fail(ctx, r, "redeem gift", err, b.backTo(r.lang, actMenu))
		return
	}
	days := res.Gift.Plan.Days
	if res.Delivery != nil {
		b.sendIssued(ctx, service.DeviceNotice{User: r.user, Delivery: *res.Delivery, Reason: service.IssuedGift, Days: days})
		return
	}
	_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, mGiftRedeemed, b.t.days(r.lang, days), b.until(r.lang, res.Subscription.ExpiresAt)), b.afterDelivery(r.lang))
}
