// Package payment connects the optional payment providers (YooKassa,
// Crypto Pay) to the service: it opens checkouts for orders and turns their
// webhooks into credits. Every confirmation is authenticated before it is
// read, checked against its order by the service, and credited at most once.
// Telegram Stars needs no adapter: it arrives as Bot API updates.
package payment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"wgbot"
	"wgbot/metrics"
	"wgbot/service"
)

// Orders is what the providers need of the service: crediting and
// refunding payments against their orders, recording the provider's
// reference for an order's checkout, and the user's contact for receipts. *service.Service implements it.
type Orders interface {
	PayOrder(ctx context.Context, p service.Payment) (service.CreditResult, error)
	SettleRefund(ctx context.Context, r service.ProviderRefund) (wgbot.RefundResult, error)
	SetOrderRef(ctx context.Context, orderID int64, ref string) error
	CancelOrder(ctx context.Context, orderID int64) error
	ReceiptContact(ctx context.Context, userID int64) (string, error)
}

var _ Orders = (*service.Service)(nil)

// MaxBody is the largest webhook body accepted; real notifications are a
// few kilobytes.
const MaxBody = 64 << 10

// readBody reads at most MaxBody bytes; a larger body is an error the
// handler answers with 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", MaxBody)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return body, 0, nil
}

// credit applies a verified confirmation and answers the provider. Only
// a failure on our side asks the provider to retry (5xx): a duplicate is a
// success, and a payment that does not match its order will not match on
// a retry either, so it is logged, counted and acknowledged.
func credit(ctx context.Context, svc Orders, m *metrics.Metrics, log *slog.Logger, w http.ResponseWriter, p service.Payment) {
	res, err := svc.PayOrder(ctx, p)
	switch {
	case err == nil && res.Duplicate:
		m.Payment(p.Provider, "duplicate")
		w.WriteHeader(http.StatusOK)
	case err == nil:
		m.Payment(p.Provider, "credited")
		log.InfoContext(ctx, "payment credited", "provider", p.Provider, "payment", p.ProviderPaymentID, "order", p.OrderID,
			"expires_at", res.Subscription.ExpiresAt)
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, wgbot.ErrPaymentMismatch), errors.Is(err, wgbot.ErrOrderNotFound):
		m.Payment(p.Provider, "rejected")
		log.WarnContext(ctx, "payment not credited", "provider", p.Provider, "payment", p.ProviderPaymentID, "order", p.OrderID, "reason", err.Error())
		w.WriteHeader(http.StatusOK)
	default:
		m.Payment(p.Provider, "error")
		log.ErrorContext(ctx, "payment could not be recorded; the provider will retry", "provider", p.Provider, "payment", p.ProviderPaymentID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	}
}

// reject answers a request that is not a genuine confirmation.
func reject(ctx context.Context, m *metrics.Metrics, log *slog.Logger, w http.ResponseWriter, provider, outcome string, status int, err error) {
	m.Payment(provider, outcome)
	log.WarnContext(ctx, "webhook refused", "provider", provider, "status", status, "reason", err.Error())
	http.Error(w, http.StatusText(status), status)
}
