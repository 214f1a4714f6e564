package telegram

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"wgbot"
)

// The Bot API calls the bot makes, each through the sender.

// sendText sends a plain-text message, with an inline keyboard if kb is
// not nil.
func (b *Bot) sendText(ctx context.Context, chatID int64, text string, kb *models.InlineKeyboardMarkup) error {
	return b.send.do(ctx, call{method: "sendMessage", chatID: chatID, kind: kindReply}, func(ctx context.Context) error {
		p := &bot.SendMessageParams{ChatID: chatID, Text: text}
		if kb != nil {
			p.ReplyMarkup = kb
		}
		_, err := b.api.SendMessage(ctx, p)
		return err
	})
}

// editText replaces a message's text and keyboard; editing to what is
// already shown is success (a user pressing a button twice).
func (b *Bot) editText(ctx context.Context, chatID int64, messageID int, text string, kb *models.InlineKeyboardMarkup) error {
	return b.send.do(ctx, call{method: "editMessageText", chatID: chatID, kind: kindReply}, func(ctx context.Context) error {
		p := &bot.EditMessageTextParams{ChatID: chatID, MessageID: messageID, Text: text}
		if kb != nil {
			p.ReplyMarkup = kb
		}
		_, err := b.api.EditMessageText(ctx, p)
		if err != nil && errors.Is(err, bot.ErrorBadRequest) && strings.Contains(err.Error(), "message is not modified") {
			return nil
		}
		return err
	})
}

func (b *Bot) sendDocument(ctx context.Context, chatID int64, name string, data []byte, caption string) error {
	return b.send.do(ctx, call{method: "sendDocument", chatID: chatID, kind: kindReply}, func(ctx context.Context) error {
		_, err := b.api.SendDocument(ctx, &bot.SendDocumentParams{
			ChatID:   chatID,
			Document: &models.InputFileUpload{Filename: name, Data: bytes.NewReader(data)},
			Caption:  caption,
		})
		return err
	})
}

func (b *Bot) sendPhoto(ctx context.Context, chatID int64, png []byte, caption string) error {
	return b.send.do(ctx, call{method: "sendPhoto", chatID: chatID, kind: kindReply}, func(ctx context.Context) error {
		_, err := b.api.SendPhoto(ctx, &bot.SendPhotoParams{
			ChatID:  chatID,
			Photo:   &models.InputFileUpload{Filename: "qr.png", Data: bytes.NewReader(png)},
			Caption: caption,
		})
		return err
	})
}

// sendStarsInvoice asks for amount Telegram Stars; payload comes back in
// the pre-checkout query and the successful payment.
func (b *Bot) sendStarsInvoice(ctx context.Context, chatID int64, title, description, payload string, amount int) error {
	return b.send.do(ctx, call{method: "sendInvoice", chatID: chatID, kind: kindReply}, func(ctx context.Context) error {
		_, err := b.api.SendInvoice(ctx, &bot.SendInvoiceParams{
			ChatID: chatID, Title: title, Description: description, Payload: payload,
			Currency: currencyStars, Prices: []models.LabeledPrice{{Label: title, Amount: amount}},
		})
		return err
	})
}

func (b *Bot) answerCallback(ctx context.Context, queryID, text string, alert bool) error {
	return b.send.do(ctx, call{method: "answerCallbackQuery", kind: kindAnswer}, func(ctx context.Context) error {
		_, err := b.api.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: queryID, Text: text, ShowAlert: alert})
		return err
	})
}

func (b *Bot) answerPreCheckout(ctx context.Context, queryID string, ok bool, errorMessage string) error {
	return b.send.do(ctx, call{method: "answerPreCheckoutQuery", kind: kindAnswer}, func(ctx context.Context) error {
		_, err := b.api.AnswerPreCheckoutQuery(ctx, &bot.AnswerPreCheckoutQueryParams{PreCheckoutQueryID: queryID, OK: ok, ErrorMessage: errorMessage})
		return err
	})
}

// createStarsSubscriptionLink makes an invoice link for a Stars
// subscription: Telegram charges amount every 30 days until it is
// cancelled, each charge carrying payload.
func (b *Bot) createStarsSubscriptionLink(ctx context.Context, title, description, payload string, amount int) (string, error) {
	var link string
	err := b.send.do(ctx, call{method: "createInvoiceLink", kind: kindAnswer}, func(ctx context.Context) error {
		var err error
		link, err = b.api.CreateInvoiceLink(ctx, &bot.CreateInvoiceLinkParams{
			Title: title, Description: description, Payload: payload, Currency: currencyStars,
			Prices: []models.LabeledPrice{{Label: title, Amount: amount}}, SubscriptionPeriod: wgbot.StarSubscriptionPeriod,
		})
		return err
	})
	return link, err
}

// editStarSubscription cancels (or re-enables) the renewal of a user's
// Stars subscription named by its charge id.
func (b *Bot) editStarSubscription(ctx context.Context, userTelegramID int64, chargeID string, canceled bool) error {
	return b.send.do(ctx, call{method: "editUserStarSubscription", kind: kindAnswer}, func(ctx context.Context) error {
		_, err := b.api.EditUserStarSubscription(ctx, &bot.EditUserStarSubscriptionParams{
			UserID: userTelegramID, TelegramPaymentChargeID: chargeID, IsCanceled: canceled})
		return err
	})
}

// errAlreadyRefunded is Telegram's answer to refunding a charge twice.
const errAlreadyRefunded = "CHARGE_ALREADY_REFUNDED"

// refundStars returns a Stars payment to the user who made it.
func (b *Bot) refundStars(ctx context.Context, userTelegramID int64, chargeID string) error {
	return b.send.do(ctx, call{method: "refundStarPayment", kind: kindAnswer}, func(ctx context.Context) error {
		_, err := b.api.RefundStarPayment(ctx, &bot.RefundStarPaymentParams{UserID: userTelegramID, TelegramPaymentChargeID: chargeID})
		return err
	})
}
