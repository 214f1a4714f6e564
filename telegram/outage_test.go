package telegram

import (
	"testing"
	"time"

	"wgbot"
	"wgbot/telegram/tgtest"
)

func TestSpan(t *testing.T) {
	t.Parallel()
	tr := catalogue()
	texts := texts(tr)
	for _, c := range []struct {
		lang    string
		minutes int
		want    string
	}{
		{langEN, 1, "1 min"}, {langEN, 62, "1 h 2 min"}, {langEN, 120, "2 h"}, {langEN, 24*60 + 5, "1 d 5 min"},
		{langRU, 45, "45 мин"}, {langRU, 3*24*60 + 4*60, "3 дн 4 ч"}, {langEN, 0, "0 min"},
	} {
		if got := texts.span(c.lang, c.minutes); got != c.want {
			t.Errorf("span(%s, %d) = %q, want %q", c.lang, c.minutes, got, c.want)
		}
	}
}

// The outage credit's message, sent by the job queue, says where, how long
// and until when, in the user's language, with the usual notice buttons.
func TestOutageCreditedMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{fake: true})
	ends := time.Date(2027, 3, 4, 5, 6, 0, 0, time.UTC)
	for i, c := range []struct {
		lang, want string
	}{
		{"en", "Sorry: our server in Amsterdam was unavailable for 1 h 2 min. We have added 1 h 2 min to your subscription; it now runs until 2027-03-04 05:06 UTC."},
		{"ru", "Извините: наш сервер в локации Amsterdam был недоступен 1 ч 2 мин. Мы добавили 1 ч 2 мин к вашей подписке, теперь она действует до 2027-03-04 05:06 UTC."},
	} {
		user := wgbot.User{TelegramID: 8800 + int64(i), Language: c.lang}
		h.tg.SendText(tgtest.User{ID: user.TelegramID, FirstName: "U", LanguageCode: c.lang}, "/start")
		h.waitMessages(user.TelegramID, 1)
		if err := h.bot.OutageCredited(h.ctx, user, wgbot.Subscription{ExpiresAt: ends, Status: wgbot.SubscriptionActive}, "Amsterdam", 62); err != nil {
			t.Fatal(err)
		}
		got := h.waitMessages(user.TelegramID, 2)[1]
		if got.Text != c.want || len(got.Keyboard) == 0 {
			t.Errorf("%s: sent %q %+v, want %q with buttons", c.lang, got.Text, got.Keyboard, c.want)
		}
	}
}
