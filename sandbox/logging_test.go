package sandbox

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The page's reads go to debug; what people do on it, and every other
// line, keeps its level.
func TestQuietPolling(t *testing.T) {
	t.Parallel()
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(QuietPolling(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))).With("component", "http")
		log.Info("http request", "method", "GET", "path", "/sandbox/api/chats/1001", "status", 200)
		log.Info("http request", "method", "GET", "path", "/sandbox/api/users", "status", 200)
		log.Info("http request", "method", "POST", "path", "/sandbox/api/chats/1001/text", "status", 202)
		log.Info("http request", "method", "POST", "path", "/webhooks/yookassa", "status", 200)
		log.Info("http request", "method", "GET", "path", "/", "status", 200)
		log.Info("trial issued", "method", "GET", "path", "/sandbox/api/chats/1001")
		log.Warn("http request", "method", "GET", "path", "/sandbox/api/chats/1002", "status", 500)
		out := buf.String()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := 5
		if level == slog.LevelDebug {
			want = 7
		}
		if len(lines) != want {
			t.Fatalf("at %v: want %d lines, got %d:\n%s", level, want, len(lines), out)
		}
		for _, line := range lines {
			if strings.Contains(line, "level=INFO") && strings.Contains(line, "method=GET path=/sandbox/api/") && strings.Contains(line, "http request") {
				t.Errorf("at %v a read of the page's API is logged at info: %s", level, line)
			}
		}
		for _, kept := range []string{"path=/sandbox/api/chats/1001/text", "path=/webhooks/yookassa", "path=/ ", "trial issued",
			"level=WARN msg=\"http request\" component=http method=GET path=/sandbox/api/chats/1002"} {
			if !strings.Contains(out, kept) {
				t.Errorf("at %v %q is missing:\n%s", level, kept, out)
			}
		}
		if level == slog.LevelDebug && !strings.Contains(out, "level=DEBUG msg=\"http request\" component=http method=GET path=/sandbox/api/chats/1001") {
			t.Errorf("at debug the poll is not logged at debug:\n%s", out)
		}
	}
}
