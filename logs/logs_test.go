package logs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestContextIDs(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "json", "info")
	ctx := With(context.Background(), slog.String("request_id", "r1"))
	ctx = With(ctx, slog.Int64("job_id", 7))
	log.InfoContext(ctx, "hello")
	log.Debug("hidden")
	log.With("component", "x").InfoContext(context.Background(), "plain")
	out := buf.String()
	for _, want := range []string{`"request_id":"r1"`, `"job_id":7`, `"component":"x"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in %s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Error("debug line logged at info level")
	}
	if strings.Count(out, "request_id") != 1 {
		t.Error("ids leaked into a line logged without the context")
	}
}
