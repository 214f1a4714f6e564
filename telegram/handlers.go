package telegram

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/service"
)

// request is one user action being handled: who, in which chat and
// language, and the button press it came from (nil for a typed message).
type request struct {
	user   wgbot.User
	lang   string
	chatID int64
	query  *models.CallbackQuery
	fresh  bool // the screen opens as a new message
	// answered is set once the button press has been answered; Telegram
	// shows a spinner on the button until then.
	answered bool
}

// handleUpdate handles one update once, however often Telegram delivers
// it: the first process to claim its id in PostgreSQL handles it.
//
// A successful payment is the exception. A claim is taken before the work,
// so a process that dies between the two would leave the payment claimed
// but never credited, and Telegram's redelivery would then be ignored:
// money taken, nothing given. Payments are instead deduplicated by their
// charge id, in the same transaction that credits them (the service
// reports a repeat as Duplicate and the bot stays silent), which holds
// across update ids, restarts and processes alike.
func (b *Bot) handleUpdate(ctx context.Context, upd *models.Update) {
	if m := upd.Message; m != nil && m.SuccessfulPayment != nil {
		b.onMessage(ctx, m)
		return
	}
	first, err := b.svc.ClaimTelegramUpdate(ctx, b.botID, upd.ID)
	switch {
	case err != nil:
		// Handling risks a duplicate reply; dropping risks a lost payment.
		b.log.Warn("telegram: could not record the update id; handling it anyway", "update", upd.ID, "err", err)
	case !first:
		b.log.Info("telegram: update already handled", "update", upd.ID)
		return
	}
	switch {
	case upd.Message != nil:
		b.onMessage(ctx, upd.Message)
	case upd.CallbackQuery != nil:
		b.onCallback(ctx, upd.CallbackQuery)
	case upd.PreCheckoutQuery != nil:
		b.onPreCheckout(ctx, upd.PreCheckoutQuery)
	case upd.MyChatMember != nil:
		b.onMyChatMember(ctx, upd.MyChatMember)
	}
}

// userFor returns the user behind a Telegram account, registering them on
// first contact (a button pressed after the database was restored), and
// notes that a user the bot believed blocked is talking to it again.
func (b *Bot) userFor(ctx context.Context, from *models.User) (wgbot.User, error) {
	u, err := b.svc.UserByTelegramID(ctx, from.ID)
	if errors.Is(err, wgbot.ErrUserNotFound) {
		return b.register(ctx, from, "")
	}
	if err != nil {
		return u, err
	}
	b.unblock(ctx, &u)
	return u, nil
}

func (b *Bot) register(ctx context.Context, from *models.User, referralCode string) (wgbot.User, error) {
	u, err := b.svc.Register(ctx, wgbot.User{
		TelegramID: from.ID, Username: from.Username, FirstName: from.FirstName, Language: normalizeLang(from.LanguageCode),
	}, referralCode)
	if err != nil {
		return u, err
	}
	b.unblock(ctx, &u)
	return u, nil
}

func (b *Bot) unblock(ctx context.Context, u *wgbot.User) {
	if !u.BlockedBot {
		return
	}
	if err := b.svc.MarkBlocked(ctx, u.TelegramID, false); err != nil {
		b.log.Warn("telegram: could not mark user unblocked", "user", u.TelegramID, "err", err)
		return
	}
	u.BlockedBot = false
}

// onMyChatMember follows the user blocking ("kicked") and unblocking the
// bot, so broadcasts skip blocked users without a failed send each time.
func (b *Bot) onMyChatMember(ctx context.Context, m *models.ChatMemberUpdated) {
	if m.Chat.Type != models.ChatTypePrivate {
		return
	}
	blocked := m.NewChatMember.Type == models.ChatMemberTypeBanned
	if err := b.svc.MarkBlocked(ctx, m.Chat.ID, blocked); err != nil {
		b.log.Warn("telegram: could not record a block change", "user", m.Chat.ID, "blocked", blocked, "err", err)
	}
}

// maxTextRunes bounds the text the bot looks at: Telegram's own limit is
// 4096 characters, so anything longer did not come from Telegram.
const maxTextRunes = 4096

var commandNamePattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// parseCommand splits "/cmd@bot args" into its lower-case name and the
// rest, which keeps its line breaks (a broadcast text). ok is false for
// text that is not a command.
func parseCommand(text string) (name, args string, ok bool) {
	if !strings.HasPrefix(text, "/") {
		return "", "", false
	}
	head, rest, _ := strings.Cut(text[1:], " ")
	if i := strings.IndexAny(head, "\n\t"); i >= 0 {
		head, rest = head[:i], head[i+1:]+" "+rest
	}
	head, _, _ = strings.Cut(head, "@")
	name = strings.ToLower(head)
	if !commandNamePattern.MatchString(name) {
		return "", "", false
	}
	return name, strings.TrimSpace(rest), true
}

func (b *Bot) onMessage(ctx context.Context, m *models.Message) {
	if m.From == nil || m.From.IsBot || m.Chat.Type != models.ChatTypePrivate {
		return // a private-chat bot: groups and channels are not served
	}
	if m.SuccessfulPayment != nil {
		b.onSuccessfulPayment(ctx, m)
		return
	}
	text := m.Text
	if text == "" || !utf8.ValidString(text) {
		return // stickers, photos, garbage: nothing to answer
	}
	if len(text) > 4*maxTextRunes || utf8.RuneCountInString(text) > maxTextRunes {
		// Longer than Telegram allows: not read, but answered in a line.
		_ = b.sendText(ctx, m.Chat.ID, b.t.get(normalizeLang(m.From.LanguageCode), mTooLong), nil)
		return
	}
	cmd, args, isCommand := parseCommand(text)
	var (
		user wgbot.User
		err  error
	)
	if cmd == "start" {
		user, err = b.register(ctx, m.From, referralCodeOf(args))
	} else {
		user, err = b.userFor(ctx, m.From)
	}
	if err != nil {
		lang := normalizeLang(m.From.LanguageCode)
		b.logFailure(ctx, "identify user", m.From.ID, err)
		_ = b.sendText(ctx, m.Chat.ID, b.t.get(lang, userError(err)), nil)
		return
	}
	r := &request{user: user, lang: normalizeLang(user.Language), chatID: m.Chat.ID}
	if !isCommand {
		b.onText(ctx, r, text)
		return
	}
	switch cmd {
	case "start":
		if token, ok := strings.CutPrefix(args, wgbot.GiftPrefix); ok {
			b.redeemGift(ctx, r, token)
			return
		}
		if strings.HasPrefix(args, service.ClaimPrefix) {
			b.claim(ctx, r, args)
			return
		}
		b.showWelcome(ctx, r, m.From.FirstName)
	case "menu":
		b.showMenu(ctx, r, "")
	case "help":
		b.showHelp(ctx, r)
	case "paysupport":
		_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, mPaySupport, b.support(r.lang)), b.supportKeyboard(r.lang))
	case "lang":
		b.showLanguages(ctx, r)
	case "promo":
		if args == "" {
			b.askPromo(ctx, r)
		} else {
			b.redeemPromo(ctx, r, args, false)
		}
	case "invite":
		b.showInvite(ctx, r)
	case "autorenew":
		b.onAutorenew(ctx, r, args)
	default:
		// An admin command from anyone else is just an unknown command:
		// the answer must not reveal that it exists.
		if !b.admins[m.From.ID] || !b.onAdminCommand(ctx, r, cmd, args) {
			_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, mUnknownCommand, cmd), b.backTo(r.lang, actMenu))
		}
	}
}

func (b *Bot) onCallback(ctx context.Context, q *models.CallbackQuery) {
	r := &request{query: q, chatID: q.From.ID}
	defer func() {
		if !r.answered {
			r.answered = true
			_ = b.answerCallback(ctx, q.ID, "", false)
		}
	}()
	if msg := q.Message.Message; msg != nil {
		if msg.Chat.Type != models.ChatTypePrivate {
			return
		}
		r.chatID = msg.Chat.ID
	}
	lang := normalizeLang(q.From.LanguageCode)
	c, ok := parseCallback(q.Data)
	if !ok {
		b.log.Info("telegram: refused callback data", "user", q.From.ID, "data", strconv.Quote(q.Data))
		b.answer(ctx, r, b.t.get(lang, mOutdated), true)
		return
	}
	user, err := b.userFor(ctx, &q.From)
	if err != nil {
		b.logFailure(ctx, "identify user", q.From.ID, err)
		b.answer(ctx, r, b.t.get(lang, userError(err)), true)
		return
	}
	r.user, r.lang, r.fresh = user, normalizeLang(user.Language), c.fresh
	if adminActions[c.act] && !b.admins[q.From.ID] {
		// Like an admin command, an admin's button does not exist for
		// anyone else.
		b.answer(ctx, r, b.t.get(r.lang, mOutdated), true)
		return
	}
	if c.act != actDeviceRename {
		// Any other button leaves the rename: the next plain message is
		// not a device's name any more.
		if err := b.svc.StopRename(ctx, r.user); err != nil {
			b.logFailure(ctx, "cancel renaming", r.user.TelegramID, err)
		}
	}
	switch c.act {
	case actMenu:
		b.showMenu(ctx, r, "")
	case actHelp:
		b.showHelp(ctx, r)
	case actLanguages:
		b.showLanguages(ctx, r)
	case actLanguage:
		b.setLanguage(ctx, r, c.lang)
	case actTrial:
		b.issueTrial(ctx, r)
	case actLocation:
		b.pickLocation(ctx, r, c)
	case actLocations:
		if !b.askLocation(ctx, r, pickPlans, actBuy) {
			b.showPlans(ctx, r)
		}
	case actDeviceMove:
		b.askMove(ctx, r, c.peerID)
	case actMoveTo:
		b.moveDevice(ctx, r, c.peerID, c.serverID)
	case actBuy:
		b.showPlans(ctx, r)
	case actPlan:
		b.showMethods(ctx, r, c.plan)
	case actPay:
		b.startPayment(ctx, r, c.provider, c.plan)
	case actSaveCard:
		b.toggleSaveCard(ctx, r, c.provider, c.plan, c.on)
	case actSubscribe:
		b.startSubscription(ctx, r, c.plan)
	case actGift:
		b.startGift(ctx, r, c.plan)
	case actRenewOff, actRenewOn:
		b.setRenewal(ctx, r, c.act == actRenewOff)
	case actSubscription:
		b.showSubscription(ctx, r, "")
	case actDeviceConfig:
		b.resendConfig(ctx, r, c.peerID)
	case actDeviceAdd:
		b.addDevice(ctx, r)
	case actDeviceRemove:
		b.confirmRemove(ctx, r, c.peerID)
	case actDeviceRemoved:
		b.removeDevice(ctx, r, c.peerID)
	case actDeviceRename:
		b.askName(ctx, r, c.peerID)
	case actRenameCancel:
		b.keepName(ctx, r)
	case actAdminRevoke:
		b.endConfirmed(ctx, r, c, "revoke", b.revoked, mAdminRevoked, mAccessRevoked)
	case actAdminBan:
		b.endConfirmed(ctx, r, c, "ban", b.svc.Ban, mAdminBanned, mBannedNotice)
	case actAdminCancel:
		b.show(ctx, r, b.t.get(r.lang, mAdminCancelled), nil)
	case actBroadcastAudience:
		b.broadcastAudience(ctx, r, c.audience)
	case actBroadcastSend:
		b.broadcastSend(ctx, r, c.audience)
	case actInvite:
		b.showInvite(ctx, r)
	case actPromo:
		b.askPromo(ctx, r)
	case actAutorenewOff:
		b.setAutorenew(ctx, r, false)
	}
}

// answer answers the button press once; later calls do nothing.
func (b *Bot) answer(ctx context.Context, r *request, text string, alert bool) {
	if r.query == nil || r.answered {
		return
	}
	r.answered = true
	_ = b.answerCallback(ctx, r.query.ID, text, alert)
}

// show puts a screen in front of the user: in place of the message whose
// button was pressed when that is a text message (and the button is not
// a fresh one), else as a new message.
// The press is answered after the screen changed (onCallback does it), so
// the button's spinner ends when the new screen is there.
func (b *Bot) show(ctx context.Context, r *request, text string, kb *models.InlineKeyboardMarkup) {
	if r.query != nil && !r.fresh {
		if m := r.query.Message.Message; m != nil && m.Text != "" {
			if b.editText(ctx, r.chatID, m.ID, text, kb) == nil {
				return
			}
		}
	}
	_ = b.sendText(ctx, r.chatID, text, kb)
}

// fail tells the user a request failed, in words chosen by userError, and
// logs the error. A button press gets the text on the button; a command
// gets a message.
func (b *Bot) fail(ctx context.Context, r *request, op string, err error, kb *models.InlineKeyboardMarkup) {
	b.logFailure(ctx, op, r.user.TelegramID, err)
	text := b.t.get(r.lang, userError(err))
	if kb == nil {
		kb = b.backTo(r.lang, actMenu)
	}
	_ = b.sendText(ctx, r.chatID, text, kb)
}

func (b *Bot) support(lang string) string {
	if b.cfg.SupportContact != "" {
		return b.cfg.SupportContact
	}
	return b.t.get(lang, mSupportDefault)
}

// standing is where a user stands with the service; the menu and the
// welcome follow it.
type standing struct {
	sub  wgbot.Subscription // the current or last subscription, if ever
	ever bool               // had a trial or a paid subscription: no trial is offered
}

func (s standing) live() bool { return s.ever && s.sub.Status == wgbot.SubscriptionActive }

// standingOf reads where the user stands. On a failure the menu of a new
// user is shown: a press the user may not make is refused by the service.
func (b *Bot) standingOf(ctx context.Context, r *request) standing {
	sub, err := b.svc.Subscription(ctx, r.user)
	if err != nil {
		if !errors.Is(err, wgbot.ErrNoSubscription) {
			b.logFailure(ctx, "read subscription for the menu", r.user.TelegramID, err)
		}
		return standing{}
	}
	return standing{sub: sub, ever: true}
}

// showMenu shows the main menu, after intro when there is one.
func (b *Bot) showMenu(ctx context.Context, r *request, intro string) {
	b.show(ctx, r, joinText(intro, b.t.get(r.lang, mMenu)), b.mainMenu(r.lang, b.standingOf(ctx, r)))
}

// showWelcome answers /start: a greeting that says where the user stands
// (the trial only for someone who never had access), then the menu.
func (b *Bot) showWelcome(ctx context.Context, r *request, firstName string) {
	name := []rune(strings.TrimSpace(firstName))
	if len(name) > 64 {
		name = name[:64]
	}
	// A fresh start: the next plain message is no longer a device's name.
	if err := b.svc.StopRename(ctx, r.user); err != nil {
		b.logFailure(ctx, "cancel renaming", r.user.TelegramID, err)
	}
	st := b.standingOf(ctx, r)
	var intro string
	switch {
	case st.live():
		intro = b.t.get(r.lang, mWelcomeLive, string(name), b.until(r.lang, st.sub.ExpiresAt))
	case st.ever && b.svc.RenewRestores(st.sub):
		intro = b.t.get(r.lang, mWelcomeEnded, string(name))
	case st.ever:
		// Revoked, banned, or past the renewal grace: a renewal issues a
		// new device, the old configs stay dead.
		intro = b.t.get(r.lang, mWelcomeEndedNew, string(name))
	default:
		intro = b.t.get(r.lang, mWelcome, string(name))
	}
	b.show(ctx, r, joinText(intro, b.t.get(r.lang, mMenu)), b.mainMenu(r.lang, st))
}

func (b *Bot) showHelp(ctx context.Context, r *request) {
	trial := b.t.days(r.lang, b.svc.TrialPlan().Days)
	b.show(ctx, r, b.t.get(r.lang, mHelp, trial, b.support(r.lang)), b.supportKeyboard(r.lang))
}

var supportUsername = regexp.MustCompile(`^@([A-Za-z0-9_]{4,32})$`)

// supportKeyboard leads back to the menu and, when SupportContact is an
// @username or an https link, straight to support.
func (b *Bot) supportKeyboard(lang string) *models.InlineKeyboardMarkup {
	kb := b.backTo(lang, actMenu)
	contact := b.cfg.SupportContact
	link := ""
	if m := supportUsername.FindStringSubmatch(contact); m != nil {
		link = "https://t.me/" + m[1]
	} else if u, err := url.Parse(contact); err == nil && u.Scheme == "https" && u.Host != "" {
		link = contact
	}
	if link != "" {
		kb.InlineKeyboard = append([][]models.InlineKeyboardButton{row(linkButton(b.t.get(lang, mBtnSupport), link))}, kb.InlineKeyboard...)
	}
	return kb
}

func (b *Bot) showLanguages(ctx context.Context, r *request) {
	var choices []models.InlineKeyboardButton
	for _, lang := range languages() {
		// Each language is named in itself, so anyone finds their own.
		choices = append(choices, button(b.t.get(lang, mLanguageName), callback{act: actLanguage, lang: lang}))
	}
	b.show(ctx, r, b.t.get(r.lang, mChooseLanguage), keyboard(choices, row(button(b.t.get(r.lang, mBtnBack), callback{act: actMenu}))))
}

func (b *Bot) setLanguage(ctx context.Context, r *request, lang string) {
	if err := b.svc.SetLanguage(ctx, r.user, lang); err != nil {
		b.fail(ctx, r, "set language", err, nil)
		return
	}
	r.lang = lang
	b.showMenu(ctx, r, b.t.get(lang, mLanguageSet))
}

func (b *Bot) issueTrial(ctx context.Context, r *request) {
	if b.askLocation(ctx, r, pickTrial, actMenu) {
		return
	}
	b.issueTrialNow(ctx, r)
}

// issueTrialNow issues the trial where the user's location says.
func (b *Bot) issueTrialNow(ctx context.Context, r *request) {
	// Issuing waits for the VPN server; stop the button's spinner first.
	b.answer(ctx, r, "", false)
	d, err := b.svc.IssueTrial(ctx, r.user)
	if (errors.Is(err, wgbot.ErrTrialUsed) || errors.Is(err, wgbot.ErrHasAccess)) && b.resendAccess(ctx, r) {
		return
	}
	if err != nil {
		b.failIssue(ctx, r, "issue trial", err, pickTrial, actMenu, b.buyKeyboard(r.lang))
		return
	}
	b.sendIssued(ctx, service.DeviceNotice{User: r.user, Delivery: d, Reason: service.IssuedTrial})
}

// resendPause is how soon after a config went out a press for access the
// user has does not send it again: a burst of presses gets it once.
const resendPause = 20 * time.Second

// resendAccess answers a press for access the user already has (a live
// trial, or a paid subscription) with their devices' configs and QR codes
// again, never with an offer to pay. It returns false when the user has no
// live access.
func (b *Bot) resendAccess(ctx context.Context, r *request) bool {
	sub, devices, err := b.svc.LiveDevices(ctx, r.user)
	if errors.Is(err, wgbot.ErrNoSubscription) {
		return false
	}
	if err != nil {
		b.fail(ctx, r, "read live devices", err, nil)
		return true
	}
	intro := ""
	if sub.IsTrial {
		intro = b.t.get(r.lang, mTrialIssued, b.until(r.lang, sub.ExpiresAt))
	}
	if len(devices) == 0 {
		// Every device was removed: a new one is added on that screen.
		b.showSubscription(ctx, r, intro)
		return true
	}
	for _, d := range devices {
		if time.Since(d.DeliveredAt) < resendPause {
			if intro == "" {
				intro = b.t.get(r.lang, mErrHasAccess)
			}
			_ = b.sendText(ctx, r.chatID, intro, b.afterDelivery(r.lang))
			return true
		}
	}
	// A device whose first delivery is not recorded is on its way (its
	// request or job is sending it, or WireGuard lacks it still): only
	// that sender sends it, so the user gets it once and working.
	onItsWay := false
	for _, d := range devices {
		if d.KeyUnknown {
			// Imported without its private key: nothing to send.
			_ = b.sendText(ctx, r.chatID, joinText(intro, b.t.get(r.lang, mNoClientKey, d.Peer.Name)), b.afterDelivery(r.lang))
			intro = ""
			continue
		}
		ok, err := b.svc.Resendable(ctx, d.Peer)
		if errors.Is(err, wgbot.ErrPeerNotFound) {
			continue // taken back meanwhile
		}
		if err != nil {
			b.fail(ctx, r, "check device delivery", err, nil)
			return true
		}
		if !ok {
			onItsWay = true
			continue
		}
		b.resend(ctx, r, d, intro)
		intro = ""
	}
	if onItsWay {
		_ = b.sendText(ctx, r.chatID, joinText(intro, b.t.get(r.lang, mConfigOnItsWay)), b.afterDelivery(r.lang))
	}
	return true
}
