package telegram

import (
	"context"
	"strings"

	"wgbot"
)

// The web panel's actions (panel.Actions): the same steps as the admin
// commands, and the user told the same way.

// Auditor keeps the audit log of admin actions (postgres.Store).
type Auditor interface {
	RecordAudit(ctx context.Context, e wgbot.AuditEntry) error
}

// asAdmin marks ctx as this admin's command: the store records the
// change it makes in that change's own transaction (wgbot.WithAudit).
// after is what the command adds to the state the store reads.
func (b *Bot) asAdmin(ctx context.Context, r *request, action string, target int64, after map[string]any) context.Context {
	return wgbot.WithAudit(ctx, wgbot.AuditEntry{Source: wgbot.AuditBot, AdminID: r.user.TelegramID, Action: action,
		TargetID: target, After: after})
}

// audit records an admin command that changes nothing of a user's
// (a broadcast queued). It is done by then, so a failure to record it is
// logged, not shown.
func (b *Bot) audit(ctx context.Context, r *request, action string, target int64, before, after map[string]any) {
	if b.cfg.Audit == nil {
		return
	}
	err := b.cfg.Audit.RecordAudit(ctx, wgbot.AuditEntry{Source: wgbot.AuditBot, AdminID: r.user.TelegramID, Action: action,
		TargetID: target, Before: before, After: after})
	if err != nil {
		b.logFailure(ctx, "audit "+action, r.user.TelegramID, err)
	}
}

// PanelLinks issues one-time sign-in links to the web panel (panel.Links).
type PanelLinks interface {
	PanelLink(ctx context.Context, adminTelegramID int64) (string, error)
}

// adminPanel answers /panel with a sign-in link for this admin. Opening
// the link spends nothing (the panel asks for a press first), so
// Telegram's link preview cannot use it up.
func (b *Bot) adminPanel(ctx context.Context, r *request) {
	if b.cfg.PanelLinks == nil {
		b.reply(ctx, r, mAdminPanelOff)
		return
	}
	link, err := b.cfg.PanelLinks.PanelLink(ctx, r.user.TelegramID)
	if err != nil {
		b.adminFailed(ctx, r, "panel link", err)
		return
	}
	b.reply(ctx, r, mAdminPanelLink, link)
}

// GrantDays adds days to the user's subscription as /grant does and tells
// the user.
func (b *Bot) GrantDays(ctx context.Context, u wgbot.User, days int) (wgbot.Subscription, error) {
	sub, delivery, err := b.svc.Grant(ctx, u, days, 0)
	if err != nil {
		return sub, err
	}
	b.tellGranted(ctx, u, days, sub, delivery)
	return sub, nil
}

// Refunder is a Checkout whose provider can give a payment's money back
// (the panel's refunds).
type Refunder interface {
	// ReturnPayment returns the whole payment to the payer through the
	// provider, at most once however often it is called for one payment.
	// note, when not empty, is what the admin must still do by hand (the
	// provider has no refunds).
	ReturnPayment(ctx context.Context, providerPaymentID string) (note string, err error)
}

// RefundPayment refunds a payment of any provider: the money first (the
// provider's refund; for Stars, as /refund does), then the ledger, once,
// and the payer is told. A second call for the same payment reports
// Duplicate and tells nobody again. A provider that cannot refund leaves
// the money to the admin: the ledger records the refund, the payment is
// flagged with what to send back, and res.Note says it.
func (b *Bot) RefundPayment(ctx context.Context, provider, chargeID string) (wgbot.RefundResult, error) {
	if provider == providerStars {
		return b.refundStarsPayment(ctx, chargeID)
	}
	var refunder Refunder
	for _, co := range b.checkouts {
		if r, ok := co.(Refunder); ok && co.Provider() == provider {
			refunder = r
		}
	}
	if refunder == nil {
		return wgbot.RefundResult{}, wgbot.Errorf(wgbot.EInvalid, "refund_provider", "%s payments cannot be refunded here: that provider is not enabled", quoted(provider))
	}
	payer, err := b.svc.PaymentUser(ctx, provider, chargeID)
	if err != nil {
		return wgbot.RefundResult{}, err
	}
	// A gift's link stops working before its money goes back; a redeemed
	// gift is not refunded.
	if err := b.svc.CloseGift(ctx, provider, chargeID); err != nil {
		return wgbot.RefundResult{}, err
	}
	note, err := refunder.ReturnPayment(ctx, chargeID)
	if err != nil {
		return wgbot.RefundResult{}, err
	}
	var res wgbot.RefundResult
	if note == "" {
		res, err = b.svc.Refund(ctx, provider, chargeID)
	} else {
		res, err = b.svc.RefundByHand(ctx, provider, chargeID, note)
	}
	if err != nil || res.Duplicate {
		return res, err
	}
	res.Note = note
	b.tellRefunded(ctx, payer, res)
	return res, nil
}

// refundStarsPayment refunds a Stars payment by its charge id, as /refund
// does (returnStars).
func (b *Bot) refundStarsPayment(ctx context.Context, chargeID string) (wgbot.RefundResult, error) {
	if !chargeIDPattern.MatchString(chargeID) {
		return wgbot.RefundResult{}, wgbot.Errorf(wgbot.EInvalid, "bad_charge", "%q is not a telegram_payment_charge_id", quoted(chargeID))
	}
	payer, err := b.svc.PaymentUser(ctx, providerStars, chargeID)
	if err != nil {
		return wgbot.RefundResult{}, err
	}
	res, refused, err := b.returnStars(ctx, payer, chargeID)
	if refused != "" {
		return res, wgbot.Errorf(wgbot.EUnavailable, "refund_refused", "Telegram refused the refund: %s", refused)
	}
	return res, err
}

// returnStars refunds payer's Stars payment chargeID, for /refund and the
// panel alike: a gift's link is closed first (a redeemed gift's payment is
// refused), Telegram returns the Stars, the ledger reverses the credit
// once, and a refunded subscription charge ends its renewal; the payer is
// told unless it was refunded before. refused is Telegram's reason when
// it would not return them.
func (b *Bot) returnStars(ctx context.Context, payer wgbot.User, chargeID string) (res wgbot.RefundResult, refused string, err error) {
	if err := b.svc.CloseGift(ctx, providerStars, chargeID); err != nil {
		return res, "", err
	}
	if err := b.refundStars(ctx, payer.TelegramID, chargeID); err != nil && !strings.Contains(err.Error(), errAlreadyRefunded) {
		return res, telegramReason(err), err
	}
	if res, err = b.svc.Refund(ctx, providerStars, chargeID); err != nil {
		return res, "", err
	}
	b.endStarRenewal(ctx, payer, chargeID)
	if !res.Duplicate {
		b.tellRefunded(ctx, payer, res)
	}
	return res, "", nil
}

// RevokeUser ends the user's access now, as a confirmed /revoke does:
// subID is the live subscription the admin saw; another live one fails
// with wgbot.ErrConfirmStale. The user is told.
func (b *Bot) RevokeUser(ctx context.Context, u wgbot.User, subID int64) error {
	if err := b.svc.RevokeSubscription(ctx, u, subID); err != nil {
		return err
	}
	lang := normalizeLang(u.Language)
	_ = b.sendText(ctx, u.TelegramID, b.t.get(lang, mAccessRevoked, b.support(lang)), nil)
	return nil
}

// BanUser bans the user and ends their access, as a confirmed /ban does;
// the user is told unless they were banned already with nothing left to
// end (a second press).
func (b *Bot) BanUser(ctx context.Context, u wgbot.User, subID int64) error {
	changed, err := b.svc.Ban(ctx, u, subID)
	if err != nil || !changed {
		return err
	}
	lang := normalizeLang(u.Language)
	_ = b.sendText(ctx, u.TelegramID, b.t.get(lang, mBannedNotice, b.support(lang)), nil)
	return nil
}

// UnbanUser lets the user buy again, as /unban does.
func (b *Bot) UnbanUser(ctx context.Context, u wgbot.User) error { return b.svc.Unban(ctx, u) }

// maxMessage is the most characters one Telegram message may carry.
const maxMessage = 4096

// SendMessage sends the admin's text to the user as it is (no markup).
func (b *Bot) SendMessage(ctx context.Context, u wgbot.User, text string) error {
	text = strings.TrimSpace(text)
	if text == "" || len([]rune(text)) > maxMessage {
		return wgbot.Errorf(wgbot.EInvalid, "bad_message", "a message has 1 to %d characters", maxMessage)
	}
	return b.sendText(ctx, u.TelegramID, text, nil)
}
