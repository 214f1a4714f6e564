package telegram

import (
	"context"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/jobs"
)

// The bot tells users about their traffic quota for the job queue.
var (
	_ jobs.QuotaNotifier = (*Bot)(nil)
	_ jobs.TopUpNotifier = (*Bot)(nil)
)

// QuotaReached tells a user their subscription's traffic this month
// reached 80% or 100% of its allowance, with buttons to buy a top-up and
// to choose a larger plan (jobs.QuotaNotifier).
func (b *Bot) QuotaReached(ctx context.Context, user wgbot.User, q wgbot.Quota, level int) error {
	lang := normalizeLang(user.Language)
	next := formatDate(q.Month.AddDate(0, 1, 0))
	text := b.t.get(lang, mQuotaWarn, b.t.traffic(lang, q.Used), b.t.traffic(lang, q.Allowance), next)
	if level >= wgbot.QuotaFull {
		text = b.t.get(lang, mQuotaFull, b.t.traffic(lang, q.Allowance), next)
	}
	return b.sendText(ctx, user.TelegramID, text, b.moreTraffic(lang))
}

// moreTraffic is the quota notice's keyboard: a button for each top-up
// Stars can pay (the methods screen it opens in place of the notice
// offers the other ways; only menu, buy and sub open anew), then one to
// the plans.
func (b *Bot) moreTraffic(lang string) *models.InlineKeyboardMarkup {
	var rows [][]models.InlineKeyboardButton
	for _, p := range b.svc.Plans() {
		price, ok := p.Prices[currencyStars]
		if !p.IsTopUp() || !ok {
			continue
		}
		rows = append(rows, row(button(b.t.get(lang, mPlanButton, b.planTitle(lang, p), formatAmount(price, currencyStars)),
			callback{act: actPlan, plan: p.Name})))
	}
	rows = append(rows, row(button(b.t.get(lang, mBtnLargerPlan), callback{act: actBuy, fresh: true})))
	return keyboard(rows...)
}

// TopUpCredited tells a user a top-up's traffic was added
// (jobs.TopUpNotifier).
func (b *Bot) TopUpCredited(ctx context.Context, user wgbot.User, bytes int64) error {
	lang := normalizeLang(user.Language)
	return b.sendText(ctx, user.TelegramID, b.t.get(lang, mTopUpCredited, b.t.traffic(lang, bytes)), b.afterDelivery(lang))
}

// showTopUp offers the ways to pay for a top-up: no renewal, no gift.
func (b *Bot) showTopUp(ctx context.Context, r *request, plan wgbot.Plan) {
	var rows [][]models.InlineKeyboardButton
	for _, m := range b.methods() {
		amount, ok := plan.Prices[m.currency]
		if !ok {
			continue
		}
		price := formatAmount(amount, m.currency)
		label := b.t.get(r.lang, mMethodStars, price)
		if m.checkout != nil {
			label = b.t.get(r.lang, mMethodButton, m.checkout.Title(r.lang), price)
		}
		rows = append(rows, row(button(label, callback{act: actPay, provider: m.provider, plan: plan.Name})))
	}
	rows = append(rows, row(button(b.t.get(r.lang, mBtnBack), callback{act: actMenu})))
	b.show(ctx, r, b.t.get(r.lang, mChooseTopUp, b.t.traffic(r.lang, plan.TopUpBytes())), keyboard(rows...))
}

// topUpInvoice is a top-up's Stars invoice title and description.
func (b *Bot) topUpInvoice(lang string, plan wgbot.Plan) (title, description string) {
	size := b.t.traffic(lang, plan.TopUpBytes())
	return truncateRunes(b.t.get(lang, mTopUpInvoiceTitle, size), 32), truncateRunes(b.t.get(lang, mTopUpInvoiceDescription, size), 255)
}

// traffic says an amount of quota in decimal units, as plans are sold
// ("50 GB", "5 MB", "1.5 GB"): not in the powers of 1024 that bytes
// uses for measured traffic.
func (t texts) traffic(lang string, n int64) string {
	units := []msg{mBytesB, mBytesKB, mBytesMB, mBytesGB, mBytesTB}
	v, u := float64(n), 0
	for v >= 1000 && u < len(units)-1 {
		v /= 1000
		u++
	}
	num := strconv.FormatFloat(v, 'f', 1, 64)
	num = strings.TrimSuffix(num, ".0")
	if lang == langRU {
		num = strings.Replace(num, ".", ",", 1)
	}
	return t.get(lang, units[u], num)
}

// overQuotaLines are /stats' subscriptions over quota, one line each.
func (b *Bot) overQuotaLines(lang string, list []wgbot.Quota) string {
	var lines []string
	for _, q := range list {
		who := strconv.FormatInt(q.TelegramID, 10)
		if q.Username != "" {
			who += " @" + q.Username
		}
		lines = append(lines, b.t.get(lang, mStatsOverQuotaLine, who, b.t.traffic(lang, q.Used), b.t.traffic(lang, q.Allowance)))
	}
	return b.t.get(lang, mStatsOverQuota, strings.Join(lines, "\n"))
}
