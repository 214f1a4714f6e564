package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"wgbot/config"
)

// operator runs the operator's commands.
func operator(ctx context.Context, s config.Settings, cmd string, args []string, log *slog.Logger, stdout io.Writer) error {
	return usageError{fmt.Sprintf("%s: not implemented yet", cmd)}
}
