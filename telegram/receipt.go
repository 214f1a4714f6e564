package telegram

import (
	"context"
	"strings"
)

// saveReceiptContact stores the email or phone a user sent after the
// YooKassa checkout asked for one (wgbot.ErrReceiptContactNeeded), and
// sends them back to the plans. Asking needs no state: a message that
// looks like a contact is one.
func (b *Bot) saveReceiptContact(ctx context.Context, r *request, text string) {
	contact, err := b.svc.SetReceiptContact(ctx, r.user, text)
	if err != nil {
		b.fail(ctx, r, "set receipt contact", err, b.backTo(r.lang, actMenu))
		return
	}
	b.show(ctx, r, b.t.get(r.lang, mReceiptSaved, contact), b.buyKeyboard(r.lang))
}

// onAutorenew is /autorenew [on|off]: without an argument it explains
// what the user would agree to. The consent is explicit and comes before
// the checkout whose card is saved; its Cancel is a button.
func (b *Bot) onAutorenew(ctx context.Context, r *request, args string) {
	switch strings.ToLower(strings.TrimSpace(args)) {
	case "on":
		b.setAutorenew(ctx, r, true)
	case "off":
		b.setAutorenew(ctx, r, false)
	default:
		b.show(ctx, r, b.t.get(r.lang, mAutorenewAbout), b.backTo(r.lang, actMenu))
	}
}

func (b *Bot) setAutorenew(ctx context.Context, r *request, on bool) {
	if err := b.svc.SetAutorenew(ctx, r.user, on); err != nil {
		b.fail(ctx, r, "set autorenew", err, nil)
		return
	}
	if !on {
		b.show(ctx, r, b.t.get(r.lang, mAutorenewOff), b.backTo(r.lang, actMenu))
		return
	}
	b.show(ctx, r, b.t.get(r.lang, mAutorenewOn), keyboard(
		row(button(b.t.get(r.lang, mBtnAutorenewOff), callback{act: actAutorenewOff})),
		row(button(b.t.get(r.lang, mBtnBack), callback{act: actMenu})),
	))
}
