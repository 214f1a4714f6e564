package telegram

import "context"

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
