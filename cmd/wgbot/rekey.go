package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"wgbot/config"
)

// rekey re-seals every peer's keys with the current master key, the last
// step of a rotation: afterwards MASTER_KEY_OLD can be removed.
func rekey(ctx context.Context, s config.Settings, log *slog.Logger, stdout io.Writer) error {
	a, err := openApp(ctx, s, log, false)
	if err != nil {
		return err
	}
	defer a.Close()
	n, err := a.svc.Rekey(ctx)
	if err != nil {
		return fmt.Errorf("re-seal client keys (%d done): %w", n, err)
	}
	var left int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM peers WHERE key_id <> $1`, a.keys.CurrentID()).Scan(&left); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-sealed %d peers with master key %s\n", n, a.keys.CurrentID())
	if left > 0 {
		return fmt.Errorf("%d peers were busy and are still sealed with an older key: run wgbot rekey again", left)
	}
	fmt.Fprintln(stdout, "every peer uses the current key: MASTER_KEY_OLD can be removed (keep a backup of it until the next database backup)")
	return nil
}
