// Command wgbot sells and provisions WireGuard VPN access through a Telegram
// bot. One binary: the bot and webhooks (serve), schema migrations, settings
// checks, the operator's commands and a local sandbox.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGOGC is the GC target when the operator sets no GOGC. Go's
// default of 100 lets the heap grow to twice what is live before a
// collection: at 50,000 peers about 40 MB are live, and a burst of trials
// took the process to 111 MB. At 50 the collections come twice as often,
// each marking the same 40 MB: about a millisecond per issuance.
const defaultGOGC = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
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
