package telegram

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"wgbot"
)

// onAdminCommand runs an admin command for an admin and reports whether
// cmd was one.
func (b *Bot) onAdminCommand(ctx context.Context, r *request, cmd, args string) bool {
	switch cmd {
	case "stats":
		b.adminStats(ctx, r)
	case "user":
		b.adminUser(ctx, r, args)
	case "grant":
		b.adminGrant(ctx, r, args)
	case "revoke":
		b.adminRevoke(ctx, r, args)
	case "broadcast":
		b.adminBroadcast(ctx, r, args)
	case "refund":
		b.adminRefund(ctx, r, args)
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
		b.reply(ctx, r, mAdminFailed, e.Message)
		return
	}
	b.reply(ctx, r, mErrInternal)
}

func (b *Bot) adminStats(ctx context.Context, r *request) {
	st, err := b.svc.Stats(ctx)
	if err != nil {
		b.adminFailed(ctx, r, "stats", err)
		return
	}
	currencies := make([]string, 0, len(st.Revenue))
	for c := range st.Revenue {
		currencies = append(currencies, c)
	}
	slices.Sort(currencies)
	var lines []string
	for _, c := range currencies {
		lines = append(lines, "• "+formatAmount(st.Revenue[c], c))
	}
	revenue := strings.Join(lines, "\n")
	if revenue == "" {
		revenue = b.t.get(r.lang, mAdminRevenueNone)
	}
	b.reply(ctx, r, mAdminStats, st.Users, st.ActiveSubscriptions, st.Trials, st.ActivePeers, revenue)
}

// findUser resolves an admin's "<telegram id>" or "@username".
func (b *Bot) findUser(ctx context.Context, arg string) (wgbot.User, error) {
	if name, ok := strings.CutPrefix(arg, "@"); ok && usernamePattern.MatchString(name) {
		return b.svc.UserByUsername(ctx, name)
	}
	if id, ok := parseID(arg); ok {
		return b.svc.UserByTelegramID(ctx, id)
	}
	return wgbot.User{}, wgbot.ErrUserNotFound
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// adminTarget reads the user an admin command names, answering the admin
// itself when there is none.
func (b *Bot) adminTarget(ctx context.Context, r *request, arg string) (wgbot.User, bool) {
	if arg == "" {
		b.reply(ctx, r, mAdminUsage)
		return wgbot.User{}, false
	}
	u, err := b.findUser(ctx, arg)
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
	u, ok := b.adminTarget(ctx, r, args)
	if !ok {
		return
	}
	yesNo := func(v bool) string {
		if v {
			return b.t.get(r.lang, mAdminYes)
		}
		return b.t.get(r.lang, mAdminNo)
	}
	subText := b.t.get(r.lang, mAdminUserNoSub)
	sub, err := b.svc.Subscription(ctx, u)
	switch {
	case err == nil:
		devices := 0
		if peers, err := b.svc.Devices(ctx, u); err == nil {
			for _, p := range peers {
				if p.SubscriptionID == sub.ID {
					devices++
				}
			}
		}
		subText = b.t.get(r.lang, mAdminUserSub, b.statusText(r.lang, sub.Status), b.planText(r.lang, sub.Plan),
			formatDate(sub.ExpiresAt), devices, sub.DeviceLimit)
	case !errors.Is(err, wgbot.ErrNoSubscription):
		b.adminFailed(ctx, r, "read subscription", err)
		return
	}
	b.reply(ctx, r, mAdminUser, u.TelegramID, u.Username, u.FirstName, u.Language, formatDate(u.CreatedAt),
		yesNo(u.BlockedBot), yesNo(u.Banned), subText)
}

func (b *Bot) adminGrant(ctx context.Context, r *request, args string) {
	fields := strings.Fields(args)
	if len(fields) != 2 {
		b.reply(ctx, r, mAdminUsage)
		return
	}
	days, err := strconv.Atoi(fields[1])
	if err != nil {
		b.reply(ctx, r, mAdminUsage)
		return
	}
	u, ok := b.adminTarget(ctx, r, fields[0])
	if !ok {
		return
	}
	sub, delivery, err := b.svc.Grant(ctx, u, days, 0)
	if err != nil {
		b.adminFailed(ctx, r, "grant", err)
		return
	}
	until := formatDate(sub.ExpiresAt)
	b.reply(ctx, r, mAdminGranted, days, u.TelegramID, until)
	lang := normalizeLang(u.Language)
	intro := b.t.get(lang, mGranted, b.t.days(lang, days), until)
	if delivery != nil {
		_ = b.deliver(ctx, u.TelegramID, lang, *delivery, intro, false)
		return
	}
	_ = b.sendText(ctx, u.TelegramID, intro, b.afterDelivery(lang))
}

func (b *Bot) adminRevoke(ctx context.Context, r *request, args string) {
	u, ok := b.adminTarget(ctx, r, strings.TrimSpace(args))
	if !ok {
		return
	}
	if err := b.svc.Revoke(ctx, u); err != nil {
		b.adminFailed(ctx, r, "revoke", err)
		return
	}
	b.reply(ctx, r, mAdminRevoked, u.TelegramID)
}

func (b *Bot) adminBroadcast(ctx context.Context, r *request, text string) {
	if text == "" {
		b.reply(ctx, r, mAdminUsage)
		return
	}
	users, err := b.svc.Reachable(ctx)
	if err != nil {
		b.adminFailed(ctx, r, "broadcast", err)
		return
	}
	if !b.broadcast.enqueue(broadcastJob{text: text, users: users, admin: r.chatID, lang: r.lang}) {
		b.reply(ctx, r, mAdminBroadcastBusy)
		return
	}
	b.reply(ctx, r, mAdminBroadcastQueue, len(users))
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
	if !chargeIDPattern.MatchString(chargeID) {
		b.reply(ctx, r, mAdminUsage)
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
	if err := b.refundStars(ctx, payer.TelegramID, chargeID); err != nil && !strings.Contains(err.Error(), errAlreadyRefunded) {
		b.logFailure(ctx, "admin refund", r.user.TelegramID, err)
		b.reply(ctx, r, mAdminRefundRefused, telegramReason(err))
		return
	}
	res, err := b.svc.Refund(ctx, providerStars, chargeID)
	if err != nil {
		b.adminFailed(ctx, r, "refund", err)
		return
	}
	if res.Duplicate {
		b.reply(ctx, r, mAdminRefundAgain, chargeID)
		return
	}
	b.reply(ctx, r, mAdminRefunded, chargeID, payer.TelegramID, res.Days)
	lang := normalizeLang(payer.Language)
	if res.Revoked {
		_ = b.sendText(ctx, payer.TelegramID, b.t.get(lang, mRefundedEnded), b.notice(lang))
	} else if res.Subscription.ID != 0 {
		_ = b.sendText(ctx, payer.TelegramID, b.t.get(lang, mRefundedUntil, formatDate(res.Subscription.ExpiresAt)), nil)
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
