package telegram

import (
	"context"

	"github.com/go-telegram/bot"

	"wgbot"
)

// BroadcastQueue keeps broadcasts durable: the text, its recipients and
// their outcome live in PostgreSQL, and the job queue sends them, paced
// across every process, resumed after a restart, and reports to the admin
// when done (postgres.Store, package jobs).
type BroadcastQueue interface {
	// AudienceSizes counts each audience's recipients now.
	AudienceSizes(ctx context.Context) (map[wgbot.Audience]int, error)
	// QueueBroadcastTo records text for the audience (never a user who
	// blocked the bot) and queues its sending, in one transaction.
	// adminChat gets the report, in lang. It returns the number of
	// recipients. The preview message it was sent from is queued once: a
	// second Send of it returns wgbot.ErrBroadcastSent and queues nothing.
	QueueBroadcastTo(ctx context.Context, text string, adminChat int64, preview int, lang string, audience wgbot.Audience) (recipients int, err error)
}

// SendBroadcast sends one broadcast message for the job queue: as a bulk
// send (at most one a second per chat, within this process's
// BroadcastRate, after any reply waiting), retried like every send. A user
// who blocked the bot is marked and the error matches ErrBlocked.
func (b *Bot) SendBroadcast(ctx context.Context, chatID int64, text string) error {
	return b.send.do(ctx, call{method: "sendMessage", chatID: chatID, kind: kindBulk}, func(ctx context.Context) error {
		_, err := b.api.SendMessage(ctx, &bot.SendMessageParams{ChatID: chatID, Text: text})
		return err
	})
}

// BroadcastDone tells the admin who queued a broadcast how it went.
func (b *Bot) BroadcastDone(ctx context.Context, adminChat int64, lang string, delivered, blocked, failed int) error {
	// The admin's own copy may have just gone out; keep their chat at one
	// message a second too.
	if err := b.send.waitChat(ctx, adminChat); err != nil {
		return err
	}
	return b.sendText(ctx, adminChat, b.t.get(normalizeLang(lang), mAdminBroadcastDone, delivered, blocked, failed), nil)
}
