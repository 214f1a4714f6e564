package telegram

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"wgbot"
)

// action is what an inline button asks for.
type action int

const (
	actMenu action = iota + 1
	actTrial
	actBuy
	actPlan          // buy:plan:<plan>
	actPay           // buy:pay:<provider>:<plan>
	actSubscription  // sub
	actDeviceConfig  // dev:cfg:<peer id>
	actDeviceAdd     // dev:add
	actDeviceRemove  // dev:rm:<peer id>: asks for confirmation
	actDeviceRemoved // dev:rmok:<peer id>: confirmed
	actDeviceRename  // dev:ren:<peer id>: asks for the new name
	actRenameCancel  // dev:keep
	actHelp
	actLanguages // lang
	actLanguage  // lang:<en|ru>
	// Locations, offered only when there are several. A location travels
	// as the id of one of its servers (0 or "any": wherever there is room).
	actLocation   // loc:<t|d|p>:<server id|any>: picked for a trial, a new device, or purchases
	actLocations  // loc: where purchases' devices go, asked from the plans
	actDeviceMove // dev:mv:<peer id>: asks where to
	actMoveTo     // loc:m:<peer id>:<server id>

	// Admins' buttons (adminActions); refused for anyone else.
	actAdminRevoke       // adm:rv:<telegram id>:<subscription id>: a confirmed /revoke
	actAdminCancel       // adm:no
	actBroadcastAudience // bc:aud:<audience>: Send to it is offered
	actBroadcastSend     // bc:send:<audience>
	actAdminBan          // adm:ban:<telegram id>:<subscription id>: a confirmed /ban

	actInvite // invite: the user's referral link
	actPromo  // promo: how to enter a promo code

	actSubscribe    // buy:sub:<plan>: a monthly Stars subscription's invoice link
	actRenewOff     // sub:renew:off: cancel a Stars subscription's renewal
	actRenewOn      // sub:renew:on: re-enable it
	actGift         // buy:gift:<plan>: a Stars invoice for a gift of plan
	actAutorenewOff // aroff: the Cancel of card auto-renewal
	actSaveCard     // buy:card:<provider>:<plan>:<on|off>: the checkout's "renew automatically with this card" box, ticked or not
)

// adminActions are the buttons only an admin may press, named one by one:
// an action added later is a user's unless it is listed here.
var adminActions = map[action]bool{
	actAdminRevoke: true, actAdminCancel: true, actAdminBan: true,
	actBroadcastAudience: true, actBroadcastSend: true,
}

// callback is parsed callback data. Callback data comes from the client
// and can be forged, so it is parsed strictly: one exact shape per action,
// canonical decimal ids, names from a closed alphabet; anything else is
// refused. Parsing says nothing about ownership: the service checks that.
type callback struct {
	act      action
	peerID   int64
	plan     string
	provider string
	lang     string
	// telegramID is the user an admin's button acts on, and subID the live
	// subscription they had when the admin was asked (0: none), so an old
	// button never ends a subscription bought since.
	telegramID int64
	subID      int64
	audience   wgbot.Audience
	// serverID names a location (0: any); then is what the pick is for:
	// pickTrial, pickDevice or pickPlans.
	serverID int64
	then     string
	// on is the state actSaveCard sets the checkbox to.
	on bool
	// fresh opens the screen as a new message instead of in place of the
	// pressed one: buttons under a delivered config or a notification must
	// not overwrite it. Only menu, buy and sub take it (a "!" suffix).
	fresh bool
}

// freshMark ends the data of a button that opens its screen anew.
const freshMark = "!"

// Telegram limits callback_data to 64 bytes.
const maxCallbackData = 64

var (
	// planNamePattern is what a plan name may be to travel in callback data.
	planNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
	// providerPattern is what a checkout's provider name may be.
	providerPattern = regexp.MustCompile(`^[a-z0-9_]{1,16}$`)
)

// data encodes c; parseCallback(c.data()) gives c back.
func (c callback) data() string {
	if c.fresh {
		return callback{act: c.act}.data() + freshMark
	}
	switch c.act {
	case actMenu:
		return "menu"
	case actTrial:
		return "trial"
	case actBuy:
		return "buy"
	case actPlan:
		return "buy:plan:" + c.plan
	case actPay:
		return "buy:pay:" + c.provider + ":" + c.plan
	case actSaveCard:
		state := "off"
		if c.on {
			state = "on"
		}
		return "buy:card:" + c.provider + ":" + c.plan + ":" + state
	case actSubscription:
		return "sub"
	case actDeviceConfig:
		return "dev:cfg:" + strconv.FormatInt(c.peerID, 10)
	case actDeviceAdd:
		return "dev:add"
	case actDeviceRemove:
		return "dev:rm:" + strconv.FormatInt(c.peerID, 10)
	case actDeviceRemoved:
		return "dev:rmok:" + strconv.FormatInt(c.peerID, 10)
	case actDeviceRename:
		return "dev:ren:" + strconv.FormatInt(c.peerID, 10)
	case actRenameCancel:
		return "dev:keep"
	case actHelp:
		return "help"
	case actLanguages:
		return "lang"
	case actLanguage:
		return "lang:" + c.lang
	case actAdminRevoke:
		return "adm:rv:" + strconv.FormatInt(c.telegramID, 10) + ":" + strconv.FormatInt(c.subID, 10)
	case actAdminCancel:
		return "adm:no"
	case actAdminBan:
		return "adm:ban:" + strconv.FormatInt(c.telegramID, 10) + ":" + strconv.FormatInt(c.subID, 10)
	case actBroadcastAudience:
		return "bc:aud:" + string(c.audience)
	case actBroadcastSend:
		return "bc:send:" + string(c.audience)
	case actSubscribe:
		return "buy:sub:" + c.plan
	case actGift:
		return "buy:gift:" + c.plan
	case actRenewOff:
		return "sub:renew:off"
	case actRenewOn:
		return "sub:renew:on"
	case actInvite:
		return "invite"
	case actPromo:
		return "promo"
	case actAutorenewOff:
		return "aroff"
	case actLocations:
		return "loc"
	case actLocation:
		if c.serverID == 0 {
			return "loc:" + c.then + ":any"
		}
		return "loc:" + c.then + ":" + strconv.FormatInt(c.serverID, 10)
	case actDeviceMove:
		return "dev:mv:" + strconv.FormatInt(c.peerID, 10)
	case actMoveTo:
		return "loc:m:" + strconv.FormatInt(c.peerID, 10) + ":" + strconv.FormatInt(c.serverID, 10)
	}
	panic("telegram: callback data for unknown action " + strconv.Itoa(int(c.act)))
}

// parseCallback parses callback data, refusing anything data() could not
// have produced.
func parseCallback(data string) (callback, bool) {
	if data == "" || len(data) > maxCallbackData {
		return callback{}, false
	}
	if rest, ok := strings.CutSuffix(data, freshMark); ok {
		c, ok := parseCallback(rest)
		if !ok || c.fresh || (c.act != actMenu && c.act != actBuy && c.act != actSubscription) {
			return callback{}, false
		}
		c.fresh = true
		return c, true
	}
	parts := strings.Split(data, ":")
	switch len(parts) {
	case 1:
		simple := map[string]action{"menu": actMenu, "trial": actTrial, "buy": actBuy, "sub": actSubscription, "help": actHelp, "lang": actLanguages,
			"invite": actInvite, "promo": actPromo, "loc": actLocations, "aroff": actAutorenewOff}
		if act, ok := simple[parts[0]]; ok {
			return callback{act: act}, true
		}
	case 2:
		switch {
		case parts[0] == "dev" && parts[1] == "add":
			return callback{act: actDeviceAdd}, true
		case parts[0] == "dev" && parts[1] == "keep":
			return callback{act: actRenameCancel}, true
		case parts[0] == "lang" && (parts[1] == langEN || parts[1] == langRU):
			return callback{act: actLanguage, lang: parts[1]}, true
		case parts[0] == "adm" && parts[1] == "no":
			return callback{act: actAdminCancel}, true
		}
	case 3:
		switch parts[0] + ":" + parts[1] {
		case "buy:plan", "buy:sub", "buy:gift":
			if planNamePattern.MatchString(parts[2]) {
				return callback{act: map[string]action{"plan": actPlan, "sub": actSubscribe, "gift": actGift}[parts[1]], plan: parts[2]}, true
			}
		case "sub:renew":
			if parts[2] == "off" || parts[2] == "on" {
				return callback{act: map[string]action{"off": actRenewOff, "on": actRenewOn}[parts[2]]}, true
			}
		case "dev:cfg", "dev:rm", "dev:rmok", "dev:ren", "dev:mv":
			id, ok := parseID(parts[2])
			if !ok {
				return callback{}, false
			}
			act := map[string]action{"cfg": actDeviceConfig, "rm": actDeviceRemove, "rmok": actDeviceRemoved, "ren": actDeviceRename, "mv": actDeviceMove}[parts[1]]
			return callback{act: act, peerID: id}, true
		case "loc:" + pickTrial, "loc:" + pickDevice, "loc:" + pickPlans:
			if parts[2] == "any" {
				return callback{act: actLocation, then: parts[1]}, true
			}
			if id, ok := parseID(parts[2]); ok {
				return callback{act: actLocation, then: parts[1], serverID: id}, true
			}
		case "bc:aud", "bc:send":
			if a := wgbot.Audience(parts[2]); slices.Contains(wgbot.Audiences(), a) {
				return callback{act: map[string]action{"aud": actBroadcastAudience, "send": actBroadcastSend}[parts[1]], audience: a}, true
			}
		}
	case 4:
		if parts[0] == "loc" && parts[1] == "m" {
			peer, ok := parseID(parts[2])
			srv, srvOK := parseID(parts[3])
			if ok && srvOK {
				return callback{act: actMoveTo, peerID: peer, serverID: srv}, true
			}
			return callback{}, false
		}
		if parts[0] == "adm" && (parts[1] == "rv" || parts[1] == "ban") {
			id, ok := parseID(parts[2])
			sub, subOK := parseID(parts[3])
			if parts[3] == "0" {
				sub, subOK = 0, true
			}
			if ok && subOK {
				return callback{act: map[string]action{"rv": actAdminRevoke, "ban": actAdminBan}[parts[1]], telegramID: id, subID: sub}, true
			}
			return callback{}, false
		}
		if parts[0] == "buy" && parts[1] == "pay" && providerPattern.MatchString(parts[2]) && planNamePattern.MatchString(parts[3]) {
			return callback{act: actPay, provider: parts[2], plan: parts[3]}, true
		}
	case 5:
		if parts[0] == "buy" && parts[1] == "card" && providerPattern.MatchString(parts[2]) && planNamePattern.MatchString(parts[3]) &&
			(parts[4] == "on" || parts[4] == "off") {
			return callback{act: actSaveCard, provider: parts[2], plan: parts[3], on: parts[4] == "on"}, true
		}
	}
	return callback{}, false
}

// parseID accepts a positive int64 written canonically: no sign, no
// leading zeros, no spaces, so one id has exactly one spelling.
func parseID(s string) (int64, bool) {
	if s == "" || s[0] == '0' || len(s) > 19 {
		return 0, false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}
