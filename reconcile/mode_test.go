package reconcile_test

import (
	"log/slog"
	"strings"
	"testing"

	"wgbot/reconcile"
)

// TestUnknownModeRefused: a mode other than device, file or none is
// refused when the reconciler is built, not discovered at the first apply.
func TestUnknownModeRefused(t *testing.T) {
	_, err := reconcile.New(nil, nil, nil, reconcile.Config{Mode: "devise"}, nil, slog.Default())
	if err == nil || !strings.Contains(err.Error(), `"devise"`) {
		t.Fatalf("New with mode devise: %v", err)
	}
}
