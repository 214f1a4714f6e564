package telegram

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/go-telegram/bot/models"
)

// secretHeader carries the secret_token given to setWebhook.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// WebhookHandler returns the handler to serve at WebhookPath. It answers
// 401 unless the request carries the webhook secret (compared in constant
// time, before the body is read), reads at most MaxWebhookBody bytes and
// answers 200 once the update is queued for a handler; Telegram retries
// anything else. Without a WebhookURL every request is refused: the bot
// long-polls then and has no secret to check.
func (b *Bot) WebhookHandler() http.Handler {
	want := sha256.Sum256([]byte(b.cfg.WebhookSecret))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// Hashing both sides makes the comparison's time independent of
		// the secret's length as well as its content.
		got := sha256.Sum256([]byte(r.Header.Get(secretHeader)))
		if b.cfg.WebhookURL == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var upd models.Update
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, b.cfg.MaxWebhookBody))
		if err := dec.Decode(&upd); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			b.log.Warn("telegram: webhook body is not an update", "err", err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if upd.ID <= 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if !b.dispatch(&upd) {
			// Shutting down: Telegram keeps the update and retries, and
			// another process (or this one, restarted) takes it.
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// WebhookPath is the path of WebhookURL, where WebhookHandler belongs in
// the HTTP server's routes; "" when the bot long-polls.
func (b *Bot) WebhookPath() string {
	if b.cfg.WebhookURL == "" {
		return ""
	}
	u, err := url.Parse(b.cfg.WebhookURL)
	if err != nil || u.Path == "" {
		return "/"
	}
	return u.Path
}
