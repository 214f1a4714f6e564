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

// RefundPayment refunds a Stars payment as /refund does (Telegram first,
// then the ledger, once) and tells the payer. A second call for the same
// payment reports Duplicate and tells nobody again. Other providers'
// payments are refunded in their own dashboards; their webhooks reverse
// the payment here.
func (b *Bot) RefundPayment(ctx context.Context, provider, chargeID string) (wgbot.RefundResult, error) {
	if provider != providerStars {
		return wgbot.RefundResult{}, wgbot.Errorf(wgbot.EInvalid, "refund_provider",
			"only Telegram Stars payments are refunded here; refund %s payments in the provider's dashboard", provider)
	}
	if !chargeIDPattern.MatchString(chargeID) {
		return wgbot.RefundResult{}, wgbot.Errorf(wgbot.EInvalid, "bad_charge", "%q is not a telegram_payment_charge_id", quoted(chargeID))
	}
	payer, err := b.svc.PaymentUser(ctx, providerStars, chargeID)
	if err != nil {
		return wgbot.RefundResult{}, err
	}
	if err := b.refundStars(ctx, payer.TelegramID, chargeID); err != nil && !strings.Contains(err.Error(), errAlreadyRefunded) {
		return wgbot.RefundResult{}, wgbot.Errorf(wgbot.EUnavailable, "refund_refused", "Telegram refused the refund: %s", telegramReason(err))
	}
	res, err := b.svc.Refund(ctx, providerStars, chargeID)
	if err != nil || res.Duplicate {
		return res, err
	}
	b.tellRefunded(ctx, payer, res)
	return res, nil
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
