package telegram

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/service"
)

// onAdminCommand runs an admin command for an admin and reports whether
// cmd was one.
func (b *Bot) onAdminCommand(ctx context.Context, r *request, cmd, args string) bool {
	switch cmd {
	case "admin":
		b.reply(ctx, r, mAdminUsage)
	case "stats":
		b.adminStats(ctx, r)
	case "user":
		b.adminUser(ctx, r, args)
	case "grant":
		b.adminGrant(ctx, r, args)
	case "revoke":
		b.askToEnd(ctx, r, args, mUsageRevoke, mAdminRevokeConfirm, mBtnConfirmRevoke, actAdminRevoke)
	case "ban":
		// A ban also bars any new access until /unban.
		b.askToEnd(ctx, r, args, mUsageBan, mAdminBanConfirm, mBtnConfirmBan, actAdminBan)
	case "unban":
		b.adminUnban(ctx, r, args)
	case "broadcast":
		b.adminBroadcast(ctx, r, args)
	case "refund":
		b.adminRefund(ctx, r, args)
	case "promoadd":
		b.adminPromoAdd(ctx, r, args)
	case "promos":
		b.adminPromos(ctx, r)
	case "promooff":
		b.adminPromoOff(ctx, r, args)
	case "panel":
		b.adminPanel(ctx, r)
	default:
		return false
	}
	return true
}

func (b *Bot) reply(ctx context.Context, r *request, key msg, args ...any) {
	_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, key, args...), nil)
}

// adminFailed tells an admin why a command failed. An admin is the
// operator, so a wgbot error's message (written to be safe for
// operators) is shown; anything else stays in the log.
func (b *Bot) adminFailed(ctx context.Context, r *request, op string, err error) {
	b.logFailure(ctx, "admin "+op, r.user.TelegramID, err)
	var e *wgbot.Error
	if errors.As(err, &e) {
		b.show(ctx, r, b.t.get(r.lang, mAdminFailed, e.Message), nil)
		return
	}
	b.show(ctx, r, b.t.get(r.lang, mErrInternal), nil)
}

// statsWindows names the windows of the service's Stats, in its order.
var statsWindows = []msg{mStatsToday, mStatsWeek, mStatsMonth}

// adminStats shows the overview, each figure labelled for what it counts
// ("trials started" is not "trials live").
func (b *Bot) adminStats(ctx context.Context, r *request) {
	st, err := b.svc.Stats(ctx)
	if err != nil {
		b.adminFailed(ctx, r, "stats", err)
		return
	}
	var servers []string
	for _, sv := range st.Servers {
		line := b.t.get(r.lang, mStatsServer, sv.Name, sv.ActivePeers)
		if sv.NodeDown {
			line += b.t.get(r.lang, mStatsNodeDown)
		}
		if sv.Draining {
			line += b.t.get(r.lang, mStatsDraining)
		}
		servers = append(servers, line)
	}
	parts := []string{b.t.get(r.lang, mStatsNow, st.Users, st.ActiveSubscriptions, st.ActiveTrials, st.ExpiringSoon,
		st.PendingPayments, strings.Join(servers, "\n")) + "\n" + b.t.get(r.lang, mStatsPromos, st.PromoCodes, st.ActivePromoCodes)}
	for i, w := range st.Windows {
		if i >= len(statsWindows) {
			break
		}
		var revenue []string
		for _, rv := range w.Revenue {
			revenue = append(revenue, b.t.get(r.lang, mStatsRevenue, rv.Provider, formatAmount(rv.Amount, rv.Currency)))
		}
		if len(revenue) == 0 {
			revenue = append(revenue, b.t.get(r.lang, mAdminRevenueNone))
		}
		conversion := "—"
		if w.TrialsStarted > 0 {
			conversion = strconv.FormatInt(100*w.TrialsConverted/w.TrialsStarted, 10) + "%"
		}
		var discounts []string
		for _, d := range w.Discounts {
			discounts = append(discounts, b.t.get(r.lang, mStatsRevenue, d.Provider, formatAmount(d.Amount, d.Currency)))
		}
		if len(discounts) == 0 {
			discounts = append(discounts, b.t.get(r.lang, mAdminRevenueNone))
		}
		parts = append(parts, b.t.get(r.lang, mStatsWindow, b.t.get(r.lang, statsWindows[i]), w.NewUsers, w.TrialsStarted,
			w.TrialsConverted, w.TrialsStarted, conversion, w.Payments, w.FailedPayments, strings.Join(revenue, "\n"))+"\n"+
			b.t.get(r.lang, mStatsRevenueExtra, strings.Join(discounts, "\n"), w.Referred, w.ReferralBonuses, w.PromoRedemptions))
	}
	if len(st.TopConsumers) > 0 {
		var top []string
		for _, c := range st.TopConsumers {
			who := strconv.FormatInt(c.TelegramID, 10)
			if c.Username != "" {
				who += " @" + c.Username
			}
			top = append(top, b.t.get(r.lang, mStatsTopLine, who, b.t.bytes(r.lang, c.Total())))
		}
		parts = append(parts, b.t.get(r.lang, mStatsTop, strings.Join(top, "\n")))
	}
	if len(st.OverQuota) > 0 {
		parts = append(parts, b.overQuotaLines(r.lang, st.OverQuota))
	}
	b.reply(ctx, r, mAdminStats, strings.Join(parts, "\n\n"))
}

// wrongUsage tells an admin what was wrong with a command, and how the
// command is written: never the whole command list.
func (b *Bot) wrongUsage(ctx context.Context, r *request, usage, problem msg, args ...any) {
	b.reply(ctx, r, mAdminWrong, b.t.get(r.lang, problem, args...), b.t.get(r.lang, usage))
}

// quoted is an admin's input as a reply repeats it: cut short.
func quoted(s string) string { return truncateRunes(s, 40) }

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// adminTarget reads the user an admin command names ("<telegram id>" or
// "@username"), answering the admin itself when there is none.
func (b *Bot) adminTarget(ctx context.Context, r *request, arg string, usage msg) (wgbot.User, bool) {
	var (
		u   wgbot.User
		err error
	)
	name, isName := strings.CutPrefix(arg, "@")
	id, isID := parseID(arg)
	switch {
	case arg == "":
		b.wrongUsage(ctx, r, usage, mWrongNoUser)
		return u, false
	case isName && usernamePattern.MatchString(name):
		u, err = b.svc.UserByUsername(ctx, name)
	case isID:
		u, err = b.svc.UserByTelegramID(ctx, id)
	default:
		b.wrongUsage(ctx, r, usage, mWrongUser, quoted(arg))
		return u, false
	}
	if errors.Is(err, wgbot.ErrUserNotFound) {
		b.reply(ctx, r, mAdminNoUser)
		return u, false
	}
	if err != nil {
		b.adminFailed(ctx, r, "find user", err)
		return u, false
	}
	return u, true
}

func (b *Bot) adminUser(ctx context.Context, r *request, args string) {
	u, ok := b.adminTarget(ctx, r, args, mUsageUser)
	if !ok {
		return
	}
	rec, err := b.svc.UserRecord(ctx, u)
	if err != nil {
		b.adminFailed(ctx, r, "read user", err)
		return
	}
	yesNo := func(v bool) string {
		if v {
			return b.t.get(r.lang, mAdminYes)
		}
		return b.t.get(r.lang, mAdminNo)
	}
	var subs, devices, payments []string
	for _, sub := range rec.Subscriptions {
		inUse := 0
		for _, p := range rec.Devices {
			if p.SubscriptionID == sub.ID && p.Status != wgbot.PeerRevoked {
				inUse++
			}
		}
		subs = append(subs, b.t.get(r.lang, mAdminUserSub, b.planText(r.lang, sub.Plan), b.statusText(r.lang, sub.Status),
			formatDate(sub.StartsAt), formatDate(sub.ExpiresAt), inUse, sub.DeviceLimit))
	}
	for _, p := range rec.Devices {
		devices = append(devices, b.t.get(r.lang, mAdminUserDevice, p.Name, p.IP, formatDate(p.CreatedAt), b.peerStatusText(r.lang, p.Status)))
	}
	for _, p := range rec.Payments {
		status := b.t.get(r.lang, mAdminPaid, formatDate(p.AppliedAt))
		if p.RefundedAt != nil {
			status = b.t.get(r.lang, mAdminPaidRefunded, formatDate(p.AppliedAt), formatDate(*p.RefundedAt))
		}
		amount := formatAmount(p.Amount, p.Currency)
		if p.Currency == "" {
			amount = "—" // a referral bonus or promo days: no money
		}
		payments = append(payments, b.t.get(r.lang, mAdminUserPayment, p.Provider, p.ProviderPaymentID,
			amount, b.t.days(r.lang, p.Days), status))
	}
	text := joinText(
		b.t.get(r.lang, mAdminUser, u.TelegramID, u.Username, u.FirstName, u.Language, formatDate(u.CreatedAt), yesNo(u.BlockedBot), yesNo(u.Banned)),
		b.t.get(r.lang, mAdminUserSubs, b.listed(r.lang, subs)),
		b.t.get(r.lang, mAdminUserDevices, b.listed(r.lang, devices)),
		b.t.get(r.lang, mAdminUserPayments, b.listed(r.lang, payments)),
	)
	_ = b.sendText(ctx, r.chatID, text, nil)
}

// maxListed is how many entries of one list /user shows, the newest ones:
// a reply must stay within Telegram's 4096 characters.
const maxListed = 10

// listed is one bulleted list of /user: its last maxListed entries and
// how many earlier ones were left out, or "none".
func (b *Bot) listed(lang string, lines []string) string {
	if len(lines) == 0 {
		return b.t.get(lang, mAdminRevenueNone)
	}
	if n := len(lines) - maxListed; n > 0 {
		return b.t.get(lang, mAdminEarlier, n) + "\n" + strings.Join(lines[n:], "\n")
	}
	return strings.Join(lines, "\n")
}

func (b *Bot) peerStatusText(lang, status string) string {
	switch status {
	case wgbot.PeerActive:
		return b.t.get(lang, mPeerActive)
	case wgbot.PeerDisabled:
		return b.t.get(lang, mPeerPaused)
	}
	return b.t.get(lang, mPeerRemoved)
}

func (b *Bot) adminGrant(ctx context.Context, r *request, args string) {
	fields := strings.Fields(args)
	switch len(fields) {
	case 0:
		b.wrongUsage(ctx, r, mUsageGrant, mWrongNoUser)
		return
	case 1:
		b.wrongUsage(ctx, r, mUsageGrant, mWrongNoDays)
		return
	case 2:
	default:
		b.wrongUsage(ctx, r, mUsageGrant, mWrongTooMany)
		return
	}
	days, err := strconv.Atoi(fields[1])
	if err != nil {
		b.wrongUsage(ctx, r, mUsageGrant, mWrongDays, quoted(fields[1]))
		return
	}
	u, ok := b.adminTarget(ctx, r, fields[0], mUsageGrant)
	if !ok {
		return
	}
	sub, delivery, err := b.svc.Grant(b.asAdmin(ctx, r, "grant", u.TelegramID, map[string]any{"days": days}), u, days, 0)
	if err != nil {
		b.adminFailed(ctx, r, "grant", err)
		return
	}
	until := formatDate(sub.ExpiresAt)
	b.reply(ctx, r, mAdminGranted, b.t.days(r.lang, days), u.TelegramID, until)
	b.tellGranted(ctx, u, days, sub, delivery)
}

// tellGranted tells the user what a grant gave them: the new device's
// config if it issued one, else the new end of their subscription.
func (b *Bot) tellGranted(ctx context.Context, u wgbot.User, days int, sub wgbot.Subscription, delivery *service.Delivery) {
	lang := normalizeLang(u.Language)
	intro := b.t.get(lang, mGranted, b.t.days(lang, days), b.until(lang, sub.ExpiresAt))
	if delivery != nil {
		b.sendIssued(ctx, service.DeviceNotice{User: u, Delivery: *delivery, Reason: service.IssuedGrant, Days: days})
		return
	}
	_ = b.sendText(ctx, u.TelegramID, intro, b.afterDelivery(lang))
}

// askToEnd asks an admin to confirm a command that ends a user's access
// (/revoke, /ban): their devices stop working at once and their time is
// not given back. Yes sends act with the user's id (endConfirmed).
func (b *Bot) askToEnd(ctx context.Context, r *request, args string, usage, question, yes msg, act action) {
	if len(strings.Fields(args)) > 1 {
		b.wrongUsage(ctx, r, usage, mWrongTooMany)
		return
	}
	u, ok := b.adminTarget(ctx, r, strings.TrimSpace(args), usage)
	if !ok {
		return
	}
	// Yes names the live subscription asked about: pressed after the user
	// bought another, it ends nothing.
	var subID int64
	sub, err := b.svc.Subscription(ctx, u)
	switch {
	case err == nil && sub.Status == wgbot.SubscriptionActive:
		subID = sub.ID
	case err != nil && !errors.Is(err, wgbot.ErrNoSubscription):
		b.adminFailed(ctx, r, "read subscription", err)
		return
	}
	_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, question, u.TelegramID, u.Username), keyboard(row(
		button(b.t.get(r.lang, yes), callback{act: act, telegramID: u.TelegramID, subID: subID}),
		button(b.t.get(r.lang, mBtnCancel), callback{act: actAdminCancel}),
	)))
}

// endConfirmed does what the admin confirmed, puts done in place of the
// question, and tells the user with notice, unless end reports that
// nothing changed (a second press): then the admin sees done and the user
// is not told again.
func (b *Bot) endConfirmed(ctx context.Context, r *request, c callback, op string, end func(context.Context, wgbot.User, int64) (bool, error), done, notice msg) {
	u, err := b.svc.UserByTelegramID(ctx, c.telegramID)
	changed := false
	if err == nil {
		changed, err = end(b.asAdmin(ctx, r, op, u.TelegramID, nil), u, c.subID)
	}
	if errors.Is(err, wgbot.ErrConfirmStale) {
		b.show(ctx, r, b.t.get(r.lang, mAdminStale, u.TelegramID), nil)
		return
	}
	if err != nil {
		b.adminFailed(ctx, r, op, err)
		return
	}
	b.show(ctx, r, b.t.get(r.lang, done, u.TelegramID), nil)
	if !changed {
		return
	}
	lang := normalizeLang(u.Language)
	_ = b.sendText(ctx, u.TelegramID, b.t.get(lang, notice, b.support(lang)), nil)
}

// revoked adapts the service's Revoke to endConfirmed: a revoke that
// finds nothing fails (ErrNoSubscription), so one that succeeds changed
// something.
func (b *Bot) revoked(ctx context.Context, u wgbot.User, subID int64) (bool, error) {
	return true, b.svc.RevokeSubscription(ctx, u, subID)
}

func (b *Bot) adminUnban(ctx context.Context, r *request, args string) {
	u, ok := b.adminTarget(ctx, r, strings.TrimSpace(args), mUsageUnban)
	if !ok {
		return
	}
	if err := b.svc.Unban(b.asAdmin(ctx, r, "unban", u.TelegramID, nil), u); err != nil {
		b.adminFailed(ctx, r, "unban", err)
		return
	}
	b.reply(ctx, r, mAdminUnbanned, u.TelegramID)
}

// adminBroadcast shows the text as users will get it, with the size of
// each audience to choose from; nothing is sent before Send.
func (b *Bot) adminBroadcast(ctx context.Context, r *request, text string) {
	if text == "" {
		b.wrongUsage(ctx, r, mUsageBroadcast, mWrongNoText)
		return
	}
	if b.cfg.Broadcasts == nil {
		b.reply(ctx, r, mAdminBroadcastOff)
		return
	}
	sizes, err := b.cfg.Broadcasts.AudienceSizes(ctx)
	if err != nil {
		b.adminFailed(ctx, r, "broadcast", err)
		return
	}
	var rows [][]models.InlineKeyboardButton
	for _, a := range wgbot.Audiences() {
		rows = append(rows, row(button(b.t.get(r.lang, mAudienceButton, b.audienceText(r.lang, a), sizes[a]), callback{act: actBroadcastAudience, audience: a})))
	}
	rows = append(rows, row(button(b.t.get(r.lang, mBtnCancel), callback{act: actAdminCancel})))
	b.reply(ctx, r, mBroadcastPreview)
	// The preview is the text alone, as users get it; Send reads it back
	// from this message, so nothing is stored before Send.
	_ = b.sendText(ctx, r.chatID, text, keyboard(rows...))
}

func (b *Bot) audienceText(lang string, a wgbot.Audience) string {
	return b.t.get(lang, map[wgbot.Audience]msg{wgbot.AudienceAll: mAudienceAll, wgbot.AudienceActive: mAudienceActive,
		wgbot.AudienceExpired: mAudienceExpired, wgbot.AudienceNeverPaid: mAudienceNeverPaid}[a])
}

// previewText is the broadcast text of the preview whose button was
// pressed; false if Telegram no longer shows that message.
func previewText(r *request) (int, string, bool) {
	m := r.query.Message.Message
	if m == nil || m.Text == "" {
		return 0, "", false
	}
	return m.ID, m.Text, true
}

// broadcastAudience puts Send to the chosen audience under the preview.
func (b *Bot) broadcastAudience(ctx context.Context, r *request, a wgbot.Audience) {
	id, text, ok := previewText(r)
	if !ok || b.cfg.Broadcasts == nil {
		b.answer(ctx, r, b.t.get(r.lang, mOutdated), true)
		return
	}
	sizes, err := b.cfg.Broadcasts.AudienceSizes(ctx)
	if err != nil {
		b.adminFailed(ctx, r, "broadcast", err)
		return
	}
	_ = b.editText(ctx, r.chatID, id, text, keyboard(
		row(button(b.t.get(r.lang, mBtnSendBroadcast, b.audienceText(r.lang, a), sizes[a]), callback{act: actBroadcastSend, audience: a})),
		row(button(b.t.get(r.lang, mBtnCancel), callback{act: actAdminCancel})),
	))
}

// broadcastSend queues the previewed text for the audience; the report
// with delivered and blocked counts comes when the last one is sent.
func (b *Bot) broadcastSend(ctx context.Context, r *request, a wgbot.Audience) {
	id, text, ok := previewText(r)
	if !ok || b.cfg.Broadcasts == nil {
		b.answer(ctx, r, b.t.get(r.lang, mOutdated), true)
		return
	}
	n, err := b.cfg.Broadcasts.QueueBroadcastTo(ctx, text, r.chatID, id, r.lang, a)
	if errors.Is(err, wgbot.ErrBroadcastSent) {
		// A second tap, or another process handling it: sent once.
		b.answer(ctx, r, b.t.get(r.lang, mBroadcastAlreadySent), true)
		return
	}
	if err != nil {
		b.adminFailed(ctx, r, "broadcast", err)
		return
	}
	b.audit(ctx, r, "broadcast", 0, nil, map[string]any{"audience": string(a), "recipients": n, "text": text})
	_ = b.editText(ctx, r.chatID, id, text, nil) // Send cannot be pressed twice
	b.reply(ctx, r, mAdminBroadcastQueue, b.audienceText(r.lang, a), n)
}

// chargeIDPattern is what a telegram_payment_charge_id may look like.
var chargeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)

// adminRefund returns a Stars payment: first Telegram gives the Stars
// back, then the service takes the days back. In that order a failure in
// between leaves the user better off, and repeating /refund finishes the
// job: Telegram then says the charge is already refunded, and the service
// reverses the payment once.
func (b *Bot) adminRefund(ctx context.Context, r *request, args string) {
	chargeID := strings.TrimSpace(args)
	switch {
	case chargeID == "":
		b.wrongUsage(ctx, r, mUsageRefund, mWrongNoCharge)
		return
	case !chargeIDPattern.MatchString(chargeID):
		b.wrongUsage(ctx, r, mUsageRefund, mWrongCharge, quoted(chargeID))
		return
	}
	payer, err := b.svc.PaymentUser(ctx, providerStars, chargeID)
	if errors.Is(err, wgbot.ErrUserNotFound) {
		b.reply(ctx, r, mErrNotFound)
		return
	}
	if err != nil {
		b.adminFailed(ctx, r, "refund", err)
		return
	}
	res, refused, err := b.returnStars(b.asAdmin(ctx, r, "refund", payer.TelegramID, nil), payer, chargeID)
	switch {
	case refused != "":
		b.logFailure(ctx, "admin refund", r.user.TelegramID, err)
		b.reply(ctx, r, mAdminRefundRefused, refused)
	case err != nil:
		b.adminFailed(ctx, r, "refund", err)
	case res.Duplicate:
		b.reply(ctx, r, mAdminRefundAgain, chargeID)
	default:
		b.reply(ctx, r, mAdminRefunded, chargeID, payer.TelegramID, b.t.days(r.lang, res.Days))
	}
}

// endStarRenewal ends the renewal of the Stars subscription whose charge
// chargeID was refunded: the user is not charged again for what was taken
// back. A failure is logged; refunding again retries it.
func (b *Bot) endStarRenewal(ctx context.Context, payer wgbot.User, chargeID string) {
	if _, err := b.svc.EndStarRenewalOf(ctx, providerStars, chargeID, func(ctx context.Context, _ int64, subCharge string) error {
		return b.editStarSubscription(ctx, payer.TelegramID, subCharge, true)
	}); err != nil {
		b.logFailure(ctx, "end Stars renewal after a refund", payer.TelegramID, err)
	}
}

// tellRefunded tells the payer what a refund took back.
func (b *Bot) tellRefunded(ctx context.Context, payer wgbot.User, res wgbot.RefundResult) {
	lang := normalizeLang(payer.Language)
	if res.Revoked {
		_ = b.sendText(ctx, payer.TelegramID, b.t.get(lang, mRefundedEnded), b.notice(lang))
	} else if res.Subscription.ID != 0 {
		_ = b.sendText(ctx, payer.TelegramID, b.t.get(lang, mRefundedUntil, b.until(lang, res.Subscription.ExpiresAt)), nil)
	}
}

// telegramReason is the Bot API's description from an error, without the
// client library's wrapping, for an admin to read.
func telegramReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ", "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
