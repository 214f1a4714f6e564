package telegram

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"

	"wgbot"
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
	var lines []string
	var rows [][]models.InlineKeyboardButton
	for _, p := range devices {
		line := mDeviceLine
		if p.Status != wgbot.PeerActive {
			line = mDeviceOff
		}
		lines = append(lines, b.t.get(r.lang, line, p.Name, p.IP))
		rows = append(rows, row(
			button(b.t.get(r.lang, mBtnDeviceConfig, p.Name), callback{act: actDeviceConfig, peerID: p.ID}),
			button(b.t.get(r.lang, mBtnDeviceRemove, p.Name), callback{act: actDeviceRemove, peerID: p.ID}),
		))
	}
	active := sub.Status == wgbot.SubscriptionActive
	if active && len(devices) < sub.DeviceLimit {
		rows = append(rows, row(button(b.t.get(r.lang, mBtnAddDevice), callback{act: actDeviceAdd})))
	}
	rows = append(rows, row(button(b.t.get(r.lang, mBtnExtend), callback{act: actBuy}), button(b.t.get(r.lang, mBtnBack), callback{act: actMenu})))
	left := 0
	if active {
		left = daysLeft(sub.ExpiresAt, time.Now())
	}
	text := b.t.get(r.lang, mSubscription, b.statusText(r.lang, sub.Status), b.planText(r.lang, sub.Plan),
		formatDate(sub.ExpiresAt), left, len(devices), sub.DeviceLimit, strings.Join(lines, "\n"))
	b.show(ctx, r, joinText(notice, strings.TrimSpace(text)), keyboard(rows...))
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

// planText names a plan: the service's own plans by what they are, the
// operator's plans by their configured names.
func (b *Bot) planText(lang, plan string) string {
	switch plan {
	case b.svc.TrialPlan().Name:
		return b.t.get(lang, mPlanTrial)
	case "grant":
		return b.t.get(lang, mPlanGift)
	}
	return plan
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
	if err != nil {
		b.fail(ctx, r, "re-send config", err, nil)
		return
	}
	b.answer(ctx, r, "", false)
	_ = b.deliver(ctx, r.chatID, r.lang, d, "", false)
}

func (b *Bot) addDevice(ctx context.Context, r *request) {
	release, ok := b.begin(r.user.ID, "device")
	if !ok {
		b.answer(ctx, r, b.t.get(r.lang, mBusy), false)
		return
	}
	defer release()
	b.answer(ctx, r, "", false)
	peers, err := b.svc.Devices(ctx, r.user)
	if err != nil {
		b.fail(ctx, r, "list devices", err, nil)
		return
	}
	d, err := b.svc.AddDevice(ctx, r.user, nextDeviceName(peers))
	if err != nil {
		b.fail(ctx, r, "add device", err, b.backTo(r.lang, actSubscription))
		return
	}
	_ = b.deliver(ctx, r.chatID, r.lang, d, "", false)
}

// nextDeviceName numbers devices device-1, device-2, ... after the highest
// number the user has, so names stay distinct.
func nextDeviceName(peers []wgbot.Peer) string {
	n := 0
	for _, p := range peers {
		if v, err := strconv.Atoi(strings.TrimPrefix(p.Name, "device-")); err == nil && v > n {
			n = v
		}
	}
	return "device-" + strconv.Itoa(n+1)
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
