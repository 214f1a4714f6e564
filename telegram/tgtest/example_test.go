package tgtest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"wgbot/telegram/tgtest"
)

func Example() {
	const token = "123456:example"
	tg := tgtest.New(token)
	defer tg.Close()

	b, err := bot.New(token, bot.WithServerURL(tg.URL()),
		bot.WithDefaultHandler(func(ctx context.Context, b *bot.Bot, u *models.Update) {
			if u.Message != nil {
				_, _ = b.SendMessage(ctx, &bot.SendMessageParams{ChatID: u.Message.Chat.ID, Text: "Hi, " + u.Message.From.FirstName})
			}
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go b.Start(ctx)

	ann := tgtest.User{ID: 42, FirstName: "Ann"}
	tg.SendText(ann, "/start")
	msgs, err := tg.WaitMessages(ctx, ann.ID, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msgs[0].Text)
	// Output: Hi, Ann
}
