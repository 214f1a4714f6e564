package telegram

import (
	"context"
	"errors"
	"slices"

	"github.com/go-telegram/bot/models"

	"wgbot"
	"wgbot/service"
)

// What a picked location is for (callback.then).
const (
	pickTrial  = "t" // then the trial is issued there
	pickDevice = "d" // then a new device is added there
	pickPlans  = "p" // then the plans are shown again; a purchase's device goes there
)

// locations is where devices may go when there is a choice: nil with one
// location (or none configured), so the bot then asks nothing. A failed
// read is logged and also asks nothing: the device goes wherever there is
// room.
func (b *Bot) locations(ctx context.Context, r *request) []wgbot.Location {
	locs, err := b.svc.Locations(ctx)
	if err != nil {
		b.logFailure(ctx, "list locations", r.user.TelegramID, err)
		return nil
	}
	if len(locs) < 2 {
		return nil
	}
	return locs
}

// locationName is the location of server id, "" if it is none of locs.
func locationName(locs []wgbot.Location, serverID int64) string {
	for _, l := range locs {
		if slices.Contains(l.ServerIDs, serverID) {
			return l.Name
		}
	}
	return ""
}

// locationKeyboard offers every location (a down one says so, and picking
// it is answered with the others) and "any"; back is where Back goes.
func (b *Bot) locationKeyboard(lang string, locs []wgbot.Location, then string, back action) *models.InlineKeyboardMarkup {
	var rows [][]models.InlineKeyboardButton
	for _, l := range locs {
		rows = append(rows, row(button(b.locationLabel(lang, l), callback{act: actLocation, then: then, serverID: l.ServerID})))
	}
	rows = append(rows, row(button(b.t.get(lang, mBtnAnyLocation), callback{act: actLocation, then: then})))
	rows = append(rows, row(button(b.t.get(lang, mBtnBack), callback{act: back})))
	return keyboard(rows...)
}

// locationLabel is a location's button: its name, marked when down.
func (b *Bot) locationLabel(lang string, l wgbot.Location) string {
	if !l.Up {
		return b.t.get(lang, mBtnLocationDown, l.Name)
	}
	return b.t.get(lang, mBtnLocation, l.Name)
}

// askLocation asks where the trial or new device should be, when there is
// a choice; it reports whether it asked.
func (b *Bot) askLocation(ctx context.Context, r *request, then string, back action) bool {
	locs := b.locations(ctx, r)
	if locs == nil {
		return false
	}
	b.show(ctx, r, b.t.get(r.lang, mPickLocation), b.locationKeyboard(r.lang, locs, then, back))
	return true
}

// pickLocation records the user's choice, then does what it was for.
func (b *Bot) pickLocation(ctx context.Context, r *request, c callback) {
	name, err := b.svc.SetLocation(ctx, r.user, c.serverID)
	if err != nil {
		b.fail(ctx, r, "set location", err, nil)
		return
	}
	switch c.then {
	case pickTrial:
		b.issueTrialNow(ctx, r)
	case pickDevice:
		b.addDeviceNow(ctx, r)
	case pickPlans:
		if name == "" {
			name = b.t.get(r.lang, mLocationAny)
		}
		b.answer(ctx, r, b.t.get(r.lang, mLocationSet, name), false)
		b.showPlans(ctx, r)
	}
}

// failIssue tells the user an issuance failed; when their location is
// down, the other locations are offered to pick again.
func (b *Bot) failIssue(ctx context.Context, r *request, op string, err error, then string, back action, kb *models.InlineKeyboardMarkup) {
	if errors.Is(err, wgbot.ErrLocationDown) {
		if locs := b.locations(ctx, r); locs != nil {
			kb = b.locationKeyboard(r.lang, locs, then, back)
		}
	}
	b.fail(ctx, r, op, err, kb)
}

// askMove asks where to move a device: every other location.
func (b *Bot) askMove(ctx context.Context, r *request, peerID int64) {
	p, kb, ok := b.moveChoices(ctx, r, peerID)
	if !ok {
		return
	}
	b.show(ctx, r, b.t.get(r.lang, mPickMoveLocation, p.Name), kb)
}

// moveChoices is the user's device peerID and the locations it may move
// to; ok is false when it was refused (the user has been answered).
func (b *Bot) moveChoices(ctx context.Context, r *request, peerID int64) (wgbot.Peer, *models.InlineKeyboardMarkup, bool) {
	locs := b.locations(ctx, r)
	peers, err := b.svc.Devices(ctx, r.user)
	if err != nil {
		b.fail(ctx, r, "list devices", err, nil)
		return wgbot.Peer{}, nil, false
	}
	i := slices.IndexFunc(peers, func(p wgbot.Peer) bool { return p.ID == peerID })
	if locs == nil || i < 0 {
		b.notFound(ctx, r, "ask where to move a device", wgbot.ErrPeerNotFound)
		return wgbot.Peer{}, nil, false
	}
	p := peers[i]
	var rows [][]models.InlineKeyboardButton
	for _, l := range locs {
		if slices.Contains(l.ServerIDs, p.ServerID) {
			continue
		}
		rows = append(rows, row(button(b.locationLabel(r.lang, l), callback{act: actMoveTo, peerID: p.ID, serverID: l.ServerID})))
	}
	rows = append(rows, row(button(b.t.get(r.lang, mBtnBack), callback{act: actSubscription})))
	return p, keyboard(rows...), true
}

// moveDevice issues the device's new peer in the chosen location and
// sends its config; the old one goes when the user says the new works.
func (b *Bot) moveDevice(ctx context.Context, r *request, peerID, serverID int64) {
	b.answer(ctx, r, "", false)
	d, err := b.svc.MoveDevice(ctx, r.user, peerID, serverID)
	if err != nil {
		kb := b.backTo(r.lang, actSubscription)
		if errors.Is(err, wgbot.ErrLocationDown) {
			if _, choices, ok := b.moveChoices(ctx, r, peerID); ok {
				kb = choices
			}
		}
		b.fail(ctx, r, "move device", err, kb)
		return
	}
	b.sendIssued(ctx, service.DeviceNotice{User: r.user, Delivery: d, Reason: service.IssuedMoved, Replaces: peerID})
}

// movedIntro and movedFollowUp are the words around a moved device's new
// config: where it is now, and the button that removes the old one.
func (b *Bot) movedIntro(ctx context.Context, lang string, d service.Delivery) string {
	locs, err := b.svc.Locations(ctx)
	if err != nil {
		b.log.Warn("telegram: list locations", "err", err)
	}
	return b.t.get(lang, mMoved, locationName(locs, d.Peer.ServerID))
}

func (b *Bot) movedFollowUp(ctx context.Context, telegramID int64, lang string, old int64) error {
	return b.sendText(ctx, telegramID, b.t.get(lang, mMovedConfirm), keyboard(
		row(button(b.t.get(lang, mBtnRemoveOld), callback{act: actDeviceRemoved, peerID: old}))))
}
