package telegram

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"wgbot"
	"wgbot/service"
	"wgbot/wireguard"
)

// deliver sends one device's config: the .conf as a document, its QR code
// as a photo, then intro and the install steps with a keyboard. The
// document is what matters; a failed QR code or text is logged and
// skipped, and only a failed document is an error.
func (b *Bot) deliver(ctx context.Context, chatID int64, lang string, d service.Delivery, intro string, pending bool) error {
	name := confFileName(d.Peer)
	if err := b.sendDocument(ctx, chatID, name, d.Config, b.t.get(lang, mConfigCaption, d.Peer.Name)); err != nil {
		return err
	}
	if png, err := wireguard.QRCode(d.Config); err != nil {
		b.log.Error("telegram: render config QR code", "peer", d.Peer.ID, "err", err)
	} else {
		_ = b.sendPhoto(ctx, chatID, png, b.t.get(lang, mQRCaption, d.Peer.Name))
	}
	// The date is stated once: by the intro when it has one.
	if intro == "" {
		intro = b.t.get(lang, mValidUntil, b.until(lang, d.Subscription.ExpiresAt))
	}
	text := intro + "\n\n" + b.t.get(lang, mInstallSteps, name)
	if pending {
		text += "\n\n" + b.t.get(lang, mApplyPending)
	}
	_ = b.sendText(ctx, chatID, text, b.afterDelivery(lang))
	return nil
}

// maxInterfaceName is Linux's limit on interface names (IFNAMSIZ - 1);
// wg-quick names the interface after the file, so a longer name fails to
// import on Linux and macOS.
const maxInterfaceName = 15

// confFileName is the file name a device's config is sent under. Its
// stem must be a name wg-quick accepts for the interface it creates (at
// most 15 of [a-zA-Z0-9_=+.-]), and no two of a user's devices, present or
// past, may share it: the one a person imports second would replace the
// first. A device with its numbered name is "wgbot-device-N.conf" ("wg-"
// once that no longer fits); a renamed one carries its number,
// "wg<N>-<name>.conf", since two names can look alike once cut to fit.
func confFileName(p wgbot.Peer) string {
	prefix := "wgbot-"
	switch {
	case p.Number > 0 && p.Name != "device-"+strconv.Itoa(p.Number):
		prefix = "wg" + strconv.Itoa(p.Number) + "-"
	case len(prefix)+len(p.Name) > maxInterfaceName:
		prefix = "wg-"
	}
	var stem strings.Builder
	stem.WriteString(prefix)
	for _, r := range p.Name {
		if stem.Len() == maxInterfaceName {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_=+.-", r):
			stem.WriteRune(r)
		default:
			stem.WriteByte('_')
		}
	}
	return stem.String() + ".conf"
}

// formatDate is how dates are shown in both languages: unambiguous and
// in UTC, the zone the server counts in.
func formatDate(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// until states an expiry with how far off it is: "2026-12-05 10:00 UTC
// (in 3 days)", counting started days; a past one is the date alone.
func (b *Bot) until(lang string, t time.Time) string {
	return b.untilAt(lang, t, b.svc.Now())
}

func (b *Bot) untilAt(lang string, t, now time.Time) string {
	switch left := t.Sub(now); {
	case left <= 0:
		return formatDate(t)
	case left < 24*time.Hour:
		return b.t.get(lang, mDateSoon, formatDate(t))
	}
	return b.t.get(lang, mDateIn, formatDate(t), b.t.days(lang, daysLeft(t, now)))
}

// daysLeft counts started days until t; 0 once it has passed.
func daysLeft(t, now time.Time) int {
	left := t.Sub(now)
	if left <= 0 {
		return 0
	}
	return int(math.Ceil(left.Hours() / 24))
}

// minorUnits is how many decimal places a currency's minor unit has;
// plan prices are stored in minor units. XTR (Stars) and a few ISO
// currencies have none.
func minorUnits(currency string) int {
	switch currency {
	case currencyStars, "JPY", "KRW", "VND", "CLP", "ISK", "UGX":
		return 0
	}
	return 2
}

// formatAmount renders an amount in minor units for people: "150 ⭐",
// "199.00 RUB".
func formatAmount(amount int64, currency string) string {
	if currency == currencyStars {
		return fmt.Sprintf("%d ⭐", amount)
	}
	if minorUnits(currency) == 0 {
		return fmt.Sprintf("%d %s", amount, currency)
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, currency)
}
