package main

import (
	"context"
	"errors"
	"io"

	"wgbot/config"
)

// sandbox runs wgbot against local stand-ins for Telegram and the payment
// providers.
func sandbox(ctx context.Context, getenv config.Getenv, envFile string, args []string, stdout, stderr io.Writer) error {
	return errors.New("sandbox: not implemented yet")
}
