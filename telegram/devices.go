package telegram

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/service"
)

// showSubscription is "My subscription": status, expiry, days left and
// the devices, each with buttons to re-send its config or remove it.
func (b *Bot) showSubscription(ctx context.Context, r *request, notice string) {
	sub, err := b.svc.Subscription(ctx, r.user)
	if errors.Is(err, wgbot.ErrNoSubscription) {
		b.show(ctx, r, joinText(notice, b.t.get(r.lang, mNoSubscription)), b.startKeyboard(r.lang))
		return
	}
	if err != nil {
		b.fail(ctx, r, "read subscription", err, nil)
		return
	}
	peers, err := b.svc.Devices(ctx, r.user)
	if err != nil {
		b.fail(ctx, r, "list devices", err, nil)
		return
	}
	var devices []wgbot.Peer
	for _, p := range peers {
		if p.SubscriptionID == sub.ID {
			devices = append(devices, p)
		}
	}
	usage, err := b.svc.DeviceUsage(ctx, devices)
	if err != nil {
		// The subscription is worth showing without the traffic.
		b.logFailure(ctx, "read device usage", r.user.TelegramID, err)
	}
	var lines []string
	var rows [][]models.InlineKeyboardButton
	locs := b.locations(ctx, r)
	for _, p := range devices {
		name := p.Name
		if where := locationName(locs, p.ServerID); where != "" {
			name = b.t.get(r.lang, mDeviceWhere, p.Name, where)
		}
		switch {
		case !p.RetireAt.IsZero():
			lines = append(lines, b.t.get(r.lang, mDeviceRetiring, name, p.IP, b.until(r.lang, p.RetireAt)))
		case p.Status != wgbot.PeerActive:
			lines = append(lines, b.t.get(r.lang, mDeviceOff, name, p.IP))
		default:
			lines = append(lines, b.t.get(r.lang, mDeviceLine, name, p.IP))
		}
		if u, ok := usage[p.ID]; ok {
			lines = append(lines, b.usageLine(r.lang, u))
		}
		rows = append(rows, row(
			button(b.t.get(r.lang, mBtnDeviceConfig, p.Name), callback{act: actDeviceConfig, peerID: p.ID}),
			button(b.t.get(r.lang, mBtnDeviceRename), callback{act: actDeviceRename, peerID: p.ID}),
			button(b.t.get(r.lang, mBtnDeviceRemove, p.Name), callback{act: actDeviceRemove, peerID: p.ID}),
		))
		if locs != nil && p.Status == wgbot.PeerActive && p.RetireAt.IsZero() {
			rows = append(rows, row(button(b.t.get(r.lang, mBtnMoveDevice, p.Name), callback{act: actDeviceMove, peerID: p.ID})))
		}
	}
	active := sub.Status == wgbot.SubscriptionActive
	if active && len(devices) < sub.DeviceLimit {
		rows = append(rows, row(button(b.t.get(r.lang, mBtnAddDevice), callback{act: actDeviceAdd})))
	}
	renewal, renewalRow := b.renewal(ctx, r)
	if renewalRow != nil {
		rows = append(rows, renewalRow)
	}
	rows = append(rows, row(button(b.t.get(r.lang, mBtnExtend), callback{act: actBuy}), button(b.t.get(r.lang, mBtnBack), callback{act: actMenu})))
	// A revoked subscription never reached its expiry: no date is shown.
	validity := ""
	switch sub.Status {
	case wgbot.SubscriptionActive:
		validity = b.t.get(r.lang, mValidUntil, b.until(r.lang, sub.ExpiresAt))
	case wgbot.SubscriptionExpired:
		validity = b.t.get(r.lang, mEndedOn, formatDate(sub.ExpiresAt))
	}
	head := []string{b.t.get(r.lang, mSubStatus, b.statusText(r.lang, sub.Status)), b.t.get(r.lang, mSubPlan, b.planText(r.lang, sub.Plan)),
		validity, renewal, b.t.get(r.lang, mSubDevices, len(devices), sub.DeviceLimit)}
	text := strings.Join(slices.DeleteFunc(append(head, lines...), func(s string) bool { return s == "" }), "\n")
	b.show(ctx, r, joinText(notice, text), keyboard(rows...))
}

// usageLine says when a device last connected and its traffic this
// month, or that it never connected.
func (b *Bot) usageLine(lang string, u wgbot.Usage) string {
	if u.LastSeen.IsZero() {
		return b.t.get(lang, mDeviceNever)
	}
	return b.t.get(lang, mDeviceSeen, b.t.ago(lang, u.LastSeen, b.svc.Now()), b.t.bytes(lang, u.Total()))
}

func (b *Bot) statusText(lang, status string) string {
	switch status {
	case wgbot.SubscriptionActive:
		return b.t.get(lang, mStatusActive)
	case wgbot.SubscriptionExpired:
		return b.t.get(lang, mStatusExpired)
	}
	return b.t.get(lang, mStatusRevoked)
}

// planText names a subscription's plan for people, never by its id: the
// service's own plans by what they are, the operator's by their titles,
// one no longer sold as a paid plan.
func (b *Bot) planText(lang, plan string) string {
	switch plan {
	case wgbot.TrialPlanName:
		return b.t.get(lang, mPlanTrial)
	case wgbot.GrantPlanName:
		return b.t.get(lang, mPlanGift)
	}
	if p, err := b.svc.Plan(plan); err == nil {
		return b.planTitle(lang, p)
	}
	return b.t.get(lang, mPlanRetired)
}

// planTitle is a plan's title in lang, else in English, else its days.
func (b *Bot) planTitle(lang string, p wgbot.Plan) string {
	for _, l := range []string{lang, langEN} {
		if title := strings.TrimSpace(p.Titles[l]); title != "" {
			return title
		}
	}
	if p.IsTopUp() {
		return b.t.get(lang, mTopUpTitle, b.t.traffic(lang, p.TopUpBytes()))
	}
	return b.t.days(lang, p.Days)
}

func joinText(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "\n\n")
}

// notFound answers a press for a device the user does not have — removed
// meanwhile, or someone else's in forged callback data — with the same
// neutral words either way.
func (b *Bot) notFound(ctx context.Context, r *request, op string, err error) {
	b.logFailure(ctx, op, r.user.TelegramID, err)
	b.answer(ctx, r, b.t.get(r.lang, userError(err)), true)
}

// resendConfig sends one of the user's devices' config and QR code again.
// The service checks the device is the user's.
func (b *Bot) resendConfig(ctx context.Context, r *request, peerID int64) {
	d, err := b.svc.DeviceConfig(ctx, r.user, peerID)
	if errors.Is(err, wgbot.ErrPeerNotFound) {
		b.notFound(ctx, r, "re-send config", err)
		return
	}
	if errors.Is(err, wgbot.ErrNoClientKey) {
		b.answer(ctx, r, b.t.get(r.lang, mNoClientKey, b.deviceName(ctx, r, peerID)), true)
		return
	}
	if err != nil {
		b.fail(ctx, r, "re-send config", err, nil)
		return
	}
	ok, err := b.svc.Resendable(ctx, d.Peer)
	if errors.Is(err, wgbot.ErrPeerNotFound) {
		b.notFound(ctx, r, "re-send config", err)
		return
	}
	if err != nil {
		b.fail(ctx, r, "check device delivery", err, nil)
		return
	}
	if !ok {
		// Its first delivery is under way; that sender sends it.
		b.answer(ctx, r, b.t.get(r.lang, mConfigOnItsWay), true)
		return
	}
	b.answer(ctx, r, "", false)
	b.resend(ctx, r, d, "")
}

// resend sends a device's config again at the user's request. Only a
// device whose first delivery is recorded (Resendable) is re-sent, so
// nothing is left to record.
func (b *Bot) resend(ctx context.Context, r *request, d service.Delivery, intro string) {
	_ = b.deliver(ctx, r.chatID, r.lang, d, intro, false)
}

func (b *Bot) addDevice(ctx context.Context, r *request) {
	if b.askLocation(ctx, r, pickDevice, actSubscription) {
		return
	}
	b.addDeviceNow(ctx, r)
}

// addDeviceNow adds the device where the user's location says.
func (b *Bot) addDeviceNow(ctx context.Context, r *request) {
	b.answer(ctx, r, "", false)
	// The store numbers it: device-N, never a name the user had.
	d, err := b.svc.AddDevice(ctx, r.user, "")
	if err != nil {
		b.failIssue(ctx, r, "add device", err, pickDevice, actSubscription, b.backTo(r.lang, actSubscription))
		return
	}
	b.sendIssued(ctx, service.DeviceNotice{User: r.user, Delivery: d, Reason: service.IssuedDevice})
}

// confirmRemove asks before removing: a removed device's config stops
// working at once and cannot be brought back.
func (b *Bot) confirmRemove(ctx context.Context, r *request, peerID int64) {
	peers, err := b.svc.Devices(ctx, r.user)
	if err != nil {
		b.fail(ctx, r, "list devices", err, nil)
		return
	}
	for _, p := range peers {
		if p.ID == peerID {
			b.show(ctx, r, b.t.get(r.lang, mConfirmRemove, p.Name, p.IP), keyboard(row(
				button(b.t.get(r.lang, mBtnConfirmRemove), callback{act: actDeviceRemoved, peerID: p.ID}),
				button(b.t.get(r.lang, mBtnCancel), callback{act: actSubscription}),
			)))
			return
		}
	}
	b.notFound(ctx, r, "confirm device removal", wgbot.ErrPeerNotFound)
}

func (b *Bot) removeDevice(ctx context.Context, r *request, peerID int64) {
	name := ""
	if peers, err := b.svc.Devices(ctx, r.user); err == nil {
		for _, p := range peers {
			if p.ID == peerID {
				name = p.Name
			}
		}
	}
	// The service removes only a device of this user, whatever the
	// callback data says.
	err := b.svc.RemoveDevice(ctx, r.user, peerID)
	if errors.Is(err, wgbot.ErrPeerNotFound) {
		b.notFound(ctx, r, "remove device", err)
		return
	}
	if err != nil {
		b.fail(ctx, r, "remove device", err, nil)
		return
	}
	b.showSubscription(ctx, r, b.t.get(r.lang, mDeviceRemoved, name))
}

// askName asks for a device's new name; the user's next plain message is
// it (onText).
func (b *Bot) askName(ctx context.Context, r *request, peerID int64) {
	peers, err := b.svc.Devices(ctx, r.user)
	if err != nil {
		b.fail(ctx, r, "list devices", err, nil)
		return
	}
	i := slices.IndexFunc(peers, func(p wgbot.Peer) bool { return p.ID == peerID })
	if i < 0 {
		b.notFound(ctx, r, "rename device", wgbot.ErrPeerNotFound)
		return
	}
	if err := b.svc.StartRename(ctx, r.user, peerID); err != nil {
		b.fail(ctx, r, "rename device", err, nil)
		return
	}
	b.show(ctx, r, b.t.get(r.lang, mAskDeviceName, peers[i].Name), b.cancelRename(r.lang))
}

// cancelRename is the keyboard while the bot waits for a device's name.
func (b *Bot) cancelRename(lang string) *models.InlineKeyboardMarkup {
	return keyboard(row(button(b.t.get(lang, mBtnCancel), callback{act: actRenameCancel})))
}

func (b *Bot) keepName(ctx context.Context, r *request) {
	if err := b.svc.StopRename(ctx, r.user); err != nil {
		b.fail(ctx, r, "cancel renaming", err, nil)
		return
	}
	b.showSubscription(ctx, r, "")
}

// onText answers a plain message: the new name of the device the bot asked
// about, else the menu.
func (b *Bot) onText(ctx context.Context, r *request, text string) {
	peerID, err := b.svc.PendingRename(ctx, r.user)
	if err != nil {
		b.logFailure(ctx, "read pending rename", r.user.TelegramID, err)
	}
	if peerID == 0 && wgbot.LooksLikeReceiptContact(text) {
		b.saveReceiptContact(ctx, r, text)
		return
	}
	if peerID == 0 {
		// A plain message that could be a promo code is tried as one
		// (the Promo code button asks for it so); anything else, or a
		// code that does not exist, opens the menu.
		if code := wgbot.NormalizePromoCode(text); wgbot.ValidPromoCode(code) {
			b.redeemPromo(ctx, r, code, true)
			return
		}
		b.showMenu(ctx, r, "")
		return
	}
	name, err := b.svc.RenameDevice(ctx, r.user, peerID, text)
	switch {
	case errors.Is(err, wgbot.ErrDeviceName), errors.Is(err, wgbot.ErrDeviceNameTaken):
		// Still waiting: the next message is another try.
		b.logFailure(ctx, "rename device", r.user.TelegramID, err)
		b.show(ctx, r, b.t.get(r.lang, userError(err)), b.cancelRename(r.lang))
	case err != nil:
		b.fail(ctx, r, "rename device", err, nil)
	default:
		b.showSubscription(ctx, r, b.t.get(r.lang, mDeviceRenamed, name))
	}
}

// deviceName is the name of one of the user's devices, for a text about
// it; "" when it cannot be read.
func (b *Bot) deviceName(ctx context.Context, r *request, peerID int64) string {
	peers, err := b.svc.Devices(ctx, r.user)
	if err != nil {
		return ""
	}
	for _, p := range peers {
		if p.ID == peerID {
			return p.Name
		}
	}
	return ""
}

// claim answers "/start claim_<token>", an imported device's claim link:
// the first user to open it owns the device and its subscription, and
// gets its config and QR code when its private key is known, or word
// that the config on the device keeps working.
func (b *Bot) claim(ctx context.Context, r *request, token string) {
	res, err := b.svc.Claim(ctx, r.user, token)
	if err != nil {
		b.logFailure(ctx, "claim an imported device", r.user.TelegramID, err)
		_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, userError(err)), b.backTo(r.lang, actMenu))
		return
	}
	until := b.until(r.lang, res.Subscription.ExpiresAt)
	if res.Delivery == nil {
		_ = b.sendText(ctx, r.chatID, b.t.get(r.lang, mClaimedKeyKept, res.Peer.Name, until), b.afterDelivery(r.lang))
		return
	}
	if err := b.deliver(ctx, r.chatID, r.lang, *res.Delivery, b.t.get(r.lang, mClaimed, res.Peer.Name, until), false); err != nil {
		b.logFailure(ctx, "send a claimed device's config", r.user.TelegramID, err)
	}
}
