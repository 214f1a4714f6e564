package sandbox

import (
	"context"
	"log/slog"
	"strings"
)

// apiPrefix is where the page's JSON API lives.
const apiPrefix = "/sandbox/api/"

// QuietPolling returns h with the page's reads demoted to debug: the page
// asks for the open chat several times a second, and at info level those
// lines would bury what people did (a message typed, a button pressed, a
// payment) and what the bot did about it, which keep their level.
func QuietPolling(h slog.Handler) slog.Handler { return quietPolling{h} }

type quietPolling struct{ slog.Handler }

func (q quietPolling) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && pageRead(r) {
		r.Level = slog.LevelDebug
		if !q.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
	}
	return q.Handler.Handle(ctx, r)
}

func (q quietPolling) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietPolling{q.Handler.WithAttrs(attrs)}
}

func (q quietPolling) WithGroup(name string) slog.Handler {
	return quietPolling{q.Handler.WithGroup(name)}
}

// pageRead reports whether r is the HTTP server's line for a GET of the
// page's API.
func pageRead(r slog.Record) bool {
	if r.Message != "http request" {
		return false
	}
	var method, path string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "method":
			method = a.Value.String()
		case "path":
			path = a.Value.String()
		}
		return true
	})
	return method == "GET" && strings.HasPrefix(path, apiPrefix)
}
