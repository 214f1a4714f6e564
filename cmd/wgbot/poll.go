package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"wgbot/config"
)

// pollLockClass is the first key of the advisory lock a long-polling
// serve process holds; the second is derived from the bot's id.
const pollLockClass = 720302

// errSecondPoller refuses a second long-polling process for one bot:
// Telegram gives each update to one getUpdates caller only, and two would
// take turns failing with "Conflict".
var errSecondPoller = errors.New("another `wgbot serve` is already long-polling this bot on this database: " +
	"only one process may long-poll; run several behind one address in webhook mode (TELEGRAM_WEBHOOK_URL)")

// holdPollLock takes the bot's long-polling lock on a dedicated
// connection and holds it until release, or until the connection ends
// (then a restarted process may take it).
func holdPollLock(ctx context.Context, s config.Settings) (release func(), err error) {
	conn, err := listenFunc(s)(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect for the long-polling lock: %w", err)
	}
	bot, _, _ := strings.Cut(s.BotToken, ":")
	h := fnv.New32a()
	h.Write([]byte(bot))
	// A few tries: the session of a process that just exited may still
	// hold it for a moment.
	var got bool
	for try := 0; !got && try < 10; try++ {
		if try > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, pollLockClass, int32(h.Sum32())).Scan(&got); err != nil {
			conn.Close(ctx)
			return nil, fmt.Errorf("take the long-polling lock: %w", err)
		}
	}
	if !got {
		conn.Close(ctx)
		return nil, errSecondPoller
	}
	return func() { conn.Close(context.WithoutCancel(ctx)) }, nil
}
