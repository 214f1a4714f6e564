package telegram

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/service"
)

// referralPrefix starts the deep-link payload of a referral link:
// t.me/<bot>?start=ref_<code>.
const referralPrefix = "ref_"

// referralCodeOf reads the referral code of "/start ref_<code>"; "" for
// any other payload.
func referralCodeOf(payload string) string {
	code, ok := strings.CutPrefix(payload, referralPrefix)
	if !ok || !wgbot.ReferralCodePattern.MatchString(code) {
		return ""
	}
	return code
}

// username is the bot's @username for links: Config.Username, else asked
// of Telegram once (getMe) and kept.
func (b *Bot) username(ctx context.Context) (string, error) {
	if b.cfg.Username != "" {
		return b.cfg.Username, nil
	}
	if u := b.me.Load(); u != nil {
		return *u, nil
	}
	var name string
	err := b.send.do(ctx, call{method: "getMe", kind: kindAnswer}, func(ctx context.Context) error {
		me, err := b.api.GetMe(ctx)
		if err == nil {
			name = me.Username
		}
		return err
	})
	if err != nil {
		return "", err
	}
	b.me.Store(&name)
	return name, nil
}

// showInvite shows the user's personal link, whom it brought and the
// days it earned.
func (b *Bot) showInvite(ctx context.Context, r *request) {
	st, err := b.svc.Referral(ctx, r.user)
	if err != nil {
		b.fail(ctx, r, "read referrals", err, nil)
		return
	}
	name, err := b.username(ctx)
	if err != nil {
		b.fail(ctx, r, "read the bot's username", err, nil)
		return
	}
	link := "https://t.me/" + name + "?start=" + referralPrefix + st.Code
	bonus := b.svc.ReferralBonus()
	var offer string
	switch {
	case bonus.ReferrerDays > 0 && bonus.InvitedDays > 0:
		offer = b.t.get(r.lang, mInviteBoth, b.t.days(r.lang, bonus.ReferrerDays), b.t.days(r.lang, bonus.InvitedDays))
	case bonus.ReferrerDays > 0:
		offer = b.t.get(r.lang, mInviteReferrer, b.t.days(r.lang, bonus.ReferrerDays))
	case bonus.InvitedDays > 0:
		offer = b.t.get(r.lang, mInviteInvited, b.t.days(r.lang, bonus.InvitedDays))
	}
	text := joinText(b.t.get(r.lang, mInvite, link), offer,
		b.t.get(r.lang, mInviteStats, b.t.friends(r.lang, int(st.Invited)), st.Paid, b.t.days(r.lang, int(st.DaysEarned))))
	b.show(ctx, r, text, b.backTo(r.lang, actMenu))
}

// askPromo tells the user how to enter a code: as a plain message, or
// with /promo.
func (b *Bot) askPromo(ctx context.Context, r *request) {
	text := b.t.get(r.lang, mPromoAsk)
	if d, err := b.svc.PendingDiscount(ctx, r.user); err == nil && d != nil {
		text = joinText(b.t.get(r.lang, mPromoWaiting, d.Code, b.discountText(r.lang, *d)), text)
	}
	b.show(ctx, r, text, b.backTo(r.lang, actMenu))
}

// redeemPromo redeems a code the user sent. quiet: the code came as a
// plain message, where text that is no code at all just opens the menu.
func (b *Bot) redeemPromo(ctx context.Context, r *request, code string, quiet bool) {
	res, err := b.svc.RedeemPromo(ctx, r.user, code)
	switch {
	case quiet && errors.Is(err, wgbot.ErrPromoNotFound):
		b.showMenu(ctx, r, "")
		return
	case err != nil:
		b.fail(ctx, r, "redeem promo code", err, b.backTo(r.lang, actMenu))
		return
	case res.Discount != nil:
		text := b.t.get(r.lang, mPromoDiscount, res.Promo.Code, b.discountText(r.lang, *res.Discount))
		if len(res.Discount.Plans) > 0 {
			var titles []string
			for _, name := range res.Discount.Plans {
				if p, err := b.svc.Plan(name); err == nil {
					titles = append(titles, b.planTitle(r.lang, p))
				}
			}
			text = joinText(text, b.t.get(r.lang, mPromoPlans, strings.Join(titles, ", ")))
		}
		b.show(ctx, r, text, b.buyKeyboard(r.lang))
		return
	}
	intro := b.t.get(r.lang, mPromoDays, res.Promo.Code, b.t.days(r.lang, res.Days), b.until(r.lang, res.Subscription.ExpiresAt))
	if res.Delivery != nil {
		b.sendIssued(ctx, service.DeviceNotice{User: r.user, Delivery: *res.Delivery, Reason: service.IssuedPromo, Days: res.Days})
		return
	}
	_ = b.sendText(ctx, r.chatID, intro, b.afterDelivery(r.lang))
}

// discountText is a discount as a user reads it: "20%" or "50.00 RUB".
func (b *Bot) discountText(lang string, d wgbot.Discount) string {
	if d.Kind == wgbot.PromoPercent {
		return b.t.get(lang, mPromoPercent, strconv.FormatInt(d.Value, 10))
	}
	return formatAmount(d.Value, d.Currency)
}

// discounted is the price of plan in currency with the user's waiting
// discount, and whether one applies: the price the order will have.
func (b *Bot) discounted(ctx context.Context, r *request, plan wgbot.Plan, currency string) (int64, bool) {
	price := plan.Prices[currency]
	d, err := b.svc.PendingDiscount(ctx, r.user)
	if err != nil {
		b.logFailure(ctx, "read pending discount", r.user.TelegramID, err)
		return price, false
	}
	if d == nil || !d.Applies(plan.Name, currency) {
		return price, false
	}
	return d.Price(price), true
}

// BonusCredited tells a user about referral bonus days
// (service.BonusNotifier).
func (b *Bot) BonusCredited(ctx context.Context, user wgbot.User, sub wgbot.Subscription, bonus service.Bonus) error {
	lang := normalizeLang(user.Language)
	key := mBonusReferrer
	if bonus.Invited {
		key = mBonusInvited
	}
	return b.sendText(ctx, user.TelegramID, b.t.get(lang, key, b.t.days(lang, bonus.Days), b.until(lang, sub.ExpiresAt)), b.afterDelivery(lang))
}

var _ service.BonusNotifier = (*Bot)(nil)

// Admin commands for promo codes: /promoadd, /promos, /promooff.

// adminPromoAdd creates a code from "CODE days=7 uses=10 per_user=1
// until=2027-01-31 plans=month,year new" (one of days=, percent= or
// fixed=<minor units><CURRENCY>).
func (b *Bot) adminPromoAdd(ctx context.Context, r *request, args string) {
	p, problem := parsePromoArgs(strings.Fields(args))
	if problem != "" {
		b.reply(ctx, r, mAdminWrong, b.t.get(r.lang, mWrongPromo, quoted(problem)), b.t.get(r.lang, mUsagePromoAdd))
		return
	}
	p, err := b.svc.CreatePromo(b.asAdmin(ctx, r, "promo_add", 0, nil), p)
	if err != nil {
		b.adminFailed(ctx, r, "create promo code", err)
		return
	}
	b.reply(ctx, r, mAdminPromoAdded, b.promoLine(r.lang, p))
}

// parsePromoArgs reads /promoadd's words; problem is the word it could
// not read, "" when all were read.
func parsePromoArgs(fields []string) (wgbot.Promo, string) {
	if len(fields) == 0 {
		return wgbot.Promo{}, "?"
	}
	p := wgbot.Promo{Code: wgbot.NormalizePromoCode(fields[0]), PerUser: 1}
	for _, f := range fields[1:] {
		key, value, _ := strings.Cut(f, "=")
		n, numErr := strconv.ParseInt(value, 10, 64)
		switch {
		case key == "new" && value == "":
			p.NewUsers = true
		case (key == "days" || key == "percent") && numErr == nil && p.Kind == "":
			p.Kind, p.Value = map[string]string{"days": wgbot.PromoDays, "percent": wgbot.PromoPercent}[key], n
		case key == "fixed" && p.Kind == "":
			i := strings.IndexFunc(value, func(c rune) bool { return c < '0' || c > '9' })
			if i <= 0 {
				return p, f
			}
			amount, err := strconv.ParseInt(value[:i], 10, 64)
			if err != nil {
				return p, f
			}
			p.Kind, p.Value, p.Currency = wgbot.PromoFixed, amount, strings.ToUpper(value[i:])
		case key == "uses" && numErr == nil && n >= 0 && n < 1<<31:
			p.MaxUses = int(n)
		case key == "per_user" && numErr == nil && n > 0 && n < 1<<31:
			p.PerUser = int(n)
		case key == "until":
			day, err := time.Parse(time.DateOnly, value)
			if err != nil {
				return p, f
			}
			p.Expires = day.AddDate(0, 0, 1) // valid through that day, UTC
		case key == "plans" && value != "":
			p.Plans = strings.Split(value, ",")
		default:
			return p, f
		}
	}
	if p.Kind == "" {
		return p, fields[0]
	}
	return p, ""
}

func (b *Bot) adminPromos(ctx context.Context, r *request) {
	list, err := b.svc.Promos(ctx)
	if err != nil {
		b.adminFailed(ctx, r, "list promo codes", err)
		return
	}
	var lines []string
	for _, p := range list {
		lines = append(lines, b.promoLine(r.lang, p))
	}
	b.reply(ctx, r, mAdminPromos, b.listed(r.lang, lines))
}

func (b *Bot) adminPromoOff(ctx context.Context, r *request, args string) {
	code := wgbot.NormalizePromoCode(args)
	if !wgbot.ValidPromoCode(code) {
		b.reply(ctx, r, mAdminWrong, b.t.get(r.lang, mWrongPromo, quoted(args)), b.t.get(r.lang, mUsagePromoOff))
		return
	}
	p, err := b.svc.DisablePromo(b.asAdmin(ctx, r, "promo_disable", 0, nil), code)
	if errors.Is(err, wgbot.ErrPromoNotFound) {
		b.reply(ctx, r, mErrPromoNotFound)
		return
	}
	if err != nil {
		b.adminFailed(ctx, r, "disable promo code", err)
		return
	}
	b.reply(ctx, r, mAdminPromoDisabled, p.Code)
}

// promoLine describes a code for an operator: what it gives, its uses
// and limits, and whether it can still be redeemed.
func (b *Bot) promoLine(lang string, p wgbot.Promo) string {
	var what string
	switch p.Kind {
	case wgbot.PromoDays:
		what = b.t.days(lang, int(p.Value))
	case wgbot.PromoPercent:
		what = b.t.get(lang, mPromoPercent, strconv.FormatInt(p.Value, 10))
	default:
		what = formatAmount(p.Value, p.Currency)
	}
	uses := strconv.Itoa(p.Uses)
	if p.MaxUses > 0 {
		uses += "/" + strconv.Itoa(p.MaxUses)
	}
	var notes []string
	if len(p.Plans) > 0 {
		notes = append(notes, strings.Join(p.Plans, ","))
	}
	if p.NewUsers {
		notes = append(notes, b.t.get(lang, mPromoNewOnly))
	}
	if !p.Expires.IsZero() {
		notes = append(notes, b.t.get(lang, mPromoUntil, formatDate(p.Expires)))
	}
	switch {
	case p.Disabled:
		notes = append(notes, b.t.get(lang, mPromoOff))
	case !p.Expires.IsZero() && !b.svc.Now().Before(p.Expires):
		notes = append(notes, b.t.get(lang, mPromoExpired))
	}
	tail := ""
	if len(notes) > 0 {
		tail = "; " + strings.Join(notes, "; ")
	}
	return b.t.get(lang, mPromoLine, p.Code, what, uses, p.PerUser, tail)
}

// revenueRow is the menu's row for referrals and promo codes.
func (b *Bot) revenueRow(lang string) []models.InlineKeyboardButton {
	return row(button(b.t.get(lang, mBtnInvite), callback{act: actInvite}), button(b.t.get(lang, mBtnPromo), callback{act: actPromo}))
}
