package telegram

import (
	"github.com/go-telegram/bot/models"
)

func keyboard(rows ...[]models.InlineKeyboardButton) *models.InlineKeyboardMarkup {
	return &models.InlineKeyboardMarkup{InlineKeyboard: rows}
}

func row(buttons ...models.InlineKeyboardButton) []models.InlineKeyboardButton { return buttons }

func button(text string, c callback) models.InlineKeyboardButton {
	return models.InlineKeyboardButton{Text: text, CallbackData: c.data()}
}

func linkButton(text, url string) models.InlineKeyboardButton {
	return models.InlineKeyboardButton{Text: text, URL: url}
}

// mainMenu is the keyboard every screen leads back to. It follows where
// the user stands: the trial only for someone who never had access, "My
// subscription" first for a live user, "Renew" first once access ended.
func (b *Bot) mainMenu(lang string, st standing) *models.InlineKeyboardMarkup {
	sub := button(b.t.get(lang, mBtnSub), callback{act: actSubscription})
	help := row(button(b.t.get(lang, mBtnHelp), callback{act: actHelp}), button(b.t.get(lang, mBtnLanguage), callback{act: actLanguages}))
	switch {
	case st.live():
		return keyboard(row(sub), row(button(b.t.get(lang, mBtnExtend), callback{act: actBuy})), b.revenueRow(lang), help)
	case st.ever:
		return keyboard(row(button(b.t.get(lang, mBtnRenew), callback{act: actBuy})), row(sub), b.revenueRow(lang), help)
	}
	return keyboard(
		row(button(b.t.get(lang, mBtnTrial), callback{act: actTrial})),
		row(button(b.t.get(lang, mBtnBuy), callback{act: actBuy}), sub),
		b.revenueRow(lang),
		help,
	)
}

// backTo is a keyboard with one button back to the screen of act.
func (b *Bot) backTo(lang string, act action) *models.InlineKeyboardMarkup {
	return keyboard(row(button(b.t.get(lang, mBtnBack), callback{act: act})))
}

// startKeyboard offers the ways to get access: trial and buy.
func (b *Bot) startKeyboard(lang string) *models.InlineKeyboardMarkup {
	return keyboard(
		row(button(b.t.get(lang, mBtnTrial), callback{act: actTrial}), button(b.t.get(lang, mBtnBuy), callback{act: actBuy})),
		row(button(b.t.get(lang, mBtnBack), callback{act: actMenu})),
	)
}

// buyKeyboard leads to the plans: the way on after a trial is refused.
func (b *Bot) buyKeyboard(lang string) *models.InlineKeyboardMarkup {
	return keyboard(row(button(b.t.get(lang, mBtnBuy), callback{act: actBuy}), button(b.t.get(lang, mBtnBack), callback{act: actMenu})))
}

// afterDelivery follows a delivered config or a payment: the subscription
// screen and the menu, opened as new messages so the install steps stay.
func (b *Bot) afterDelivery(lang string) *models.InlineKeyboardMarkup {
	return keyboard(row(
		button(b.t.get(lang, mBtnSub), callback{act: actSubscription, fresh: true}),
		button(b.t.get(lang, mBtnBack), callback{act: actMenu, fresh: true}),
	))
}

// tryAgain follows a payment that did not go through: the plans, opened
// as a new message so the notice stays.
func (b *Bot) tryAgain(lang string) *models.InlineKeyboardMarkup {
	return keyboard(row(button(b.t.get(lang, mBtnTryAgain), callback{act: actBuy, fresh: true})))
}

// notice is the keyboard of a notification: the way to buy, opened as a
// new message so the notification stays.
func (b *Bot) notice(lang string) *models.InlineKeyboardMarkup {
	return keyboard(row(button(b.t.get(lang, mBtnBuy), callback{act: actBuy, fresh: true})))
}
