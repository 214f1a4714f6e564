// Command wgbot sells and provisions WireGuard VPN access through a Telegram
// bot. One binary: the bot and webhooks (serve), schema migrations, settings
// checks, the operator's commands and a local sandbox.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a graceful shutdown; restoring the default
		// handlers lets a second one end the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wgbot:", err)
		os.Exit(exitCode(err))
	}
}
