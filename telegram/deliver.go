package telegram

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"wgbot/service"
	"wgbot/wireguard"
)

// deliver sends one device's config: the .conf as a document, its QR code
// as a photo, then intro and the install steps with a keyboard. The
// document is what matters; a failed QR code or text is logged and
// skipped, and only a failed document is an error.
func (b *Bot) deliver(ctx context.Context, chatID int64, lang string, d service.Delivery, intro string, pending bool) error {
	name := confFileName(d.Peer.Name)
	if err := b.sendDocument(ctx, chatID, name, d.Config, b.t.get(lang, mConfigCaption, d.Peer.Name)); err != nil {
		return err
	}
	if png, err := wireguard.QRCode(d.Config); err != nil {
		b.log.Error("telegram: render config QR code", "peer", d.Peer.ID, "err", err)
	} else {
		_ = b.sendPhoto(ctx, chatID, png, b.t.get(lang, mQRCaption, d.Peer.Name))
	}
	text := b.t.get(lang, mInstallSteps, name, formatDate(d.Subscription.ExpiresAt))
	if intro != "" {
		text = intro + "\n\n" + text
	}
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

// confFileName is the file name a device's config is sent under:
// "wgbot-<device>.conf", whose stem wg-quick accepts as an interface name
// (at most 15 of [a-zA-Z0-9_=+.-]).
func confFileName(device string) string {
	var stem strings.Builder
	stem.WriteString("wgbot-")
	for _, r := range device {
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
