package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"wgbot"
	"wgbot/metrics"
	"wgbot/payment/yookassa"
	"wgbot/service"
)

const providerYooKassa = "yookassa"

// YooKassaConfig is the YOOKASSA_* settings.
type YooKassaConfig struct {
	BaseURL          string
	ShopID           string
	SecretKey        string
	ReturnURL        string   // where the payer lands after paying (the bot's t.me link)
	AllowedIPs       []string // notification sources; empty: YooKassa's published ranges
	TrustProxyHeader string   // e.g. X-Forwarded-For behind one reverse proxy; empty: the peer address
}

// YooKassa opens checkouts and accepts notifications.
type YooKassa struct {
	client      *yookassa.Client
	svc         *service.Service
	allow       *yookassa.IPAllowList
	proxyHeader string
	returnURL   string
	metrics     *metrics.Metrics
	log         *slog.Logger
}

// NewYooKassa checks the settings and returns the adapter.
func NewYooKassa(cfg YooKassaConfig, svc *service.Service, m *metrics.Metrics, log *slog.Logger) (*YooKassa, error) {
	ranges := cfg.AllowedIPs
	if len(ranges) == 0 {
		ranges = yookassa.DefaultIPRanges()
	}
	allow, err := yookassa.NewIPAllowList(ranges)
	if err != nil {
		return nil, fmt.Errorf("YOOKASSA_ALLOWED_IPS: %w", err)
	}
	if cfg.ShopID == "" || cfg.SecretKey == "" {
		return nil, errors.New("YOOKASSA_SHOP_ID and YOOKASSA_SECRET_KEY are required to accept YooKassa")
	}
	return &YooKassa{
		client: &yookassa.Client{BaseURL: cfg.BaseURL, ShopID: cfg.ShopID, SecretKey: cfg.SecretKey},
		svc:    svc, allow: allow, proxyHeader: cfg.TrustProxyHeader, returnURL: cfg.ReturnURL, metrics: m, log: log,
	}, nil
}

// Provider implements telegram.Checkout.
func (y *YooKassa) Provider() string { return providerYooKassa }

// Currency implements telegram.Checkout: YooKassa charges roubles.
func (y *YooKassa) Currency() string { return "RUB" }

// Title implements telegram.Checkout.
func (y *YooKassa) Title(lang string) string {
	if lang == "ru" {
		return "Банковская карта (ЮKassa)"
	}
	return "Bank card (YooKassa)"
}

// Start creates the payment with the order in its metadata. The
// idempotence key is the order id, so a retried button press or a lost
// answer never opens a second charge for one order.
func (y *YooKassa) Start(ctx context.Context, order wgbot.Order, user wgbot.User) (string, error) {
	p, err := y.client.CreatePayment(ctx, yookassa.CreatePaymentRequest{
		Amount:      yookassa.AmountFromMinor(order.Amount, order.Currency),
		Description: fmt.Sprintf("VPN %s, order %d", order.Plan, order.ID),
		ReturnURL:   y.returnURL,
		Metadata:    map[string]string{"order_id": strconv.FormatInt(order.ID, 10), "user": strconv.FormatInt(user.TelegramID, 10)},
	}, "wgbot-order-"+strconv.FormatInt(order.ID, 10))
	if errors.Is(err, yookassa.ErrUnavailable) {
		return "", fmt.Errorf("yookassa: %w", wgbot.Errorf(wgbot.EUnavailable, "provider_unavailable", "YooKassa is unavailable: %v", err))
	}
	if err != nil {
		return "", fmt.Errorf("yookassa create payment for order %d: %w", order.ID, err)
	}
	if err := y.svc.SetOrderRef(ctx, order.ID, p.ID); err != nil {
		return "", err
	}
	if p.Confirmation == nil || p.Confirmation.ConfirmationURL == "" {
		return "", fmt.Errorf("yookassa payment %s has no confirmation URL", p.ID)
	}
	return p.Confirmation.ConfirmationURL, nil
}

// ServeHTTP accepts YooKassa's notifications. The body is never trusted:
// after the source address check, the payment is fetched back from the API
// and only that answer is credited.
func (y *YooKassa) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip, err := yookassa.ClientIP(r, y.proxyHeader)
	if err != nil || !y.allow.Allowed(ip) {
		reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "forbidden_source", http.StatusForbidden, fmt.Errorf("source %v not allowed (%v)", ip, err))
		return
	}
	body, status, err := readBody(w, r)
	if err != nil {
		reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "bad_request", status, err)
		return
	}
	n, err := yookassa.ParseNotification(body)
	if errors.Is(err, yookassa.ErrUnsupportedEvent) {
		w.WriteHeader(http.StatusOK) // not ours to act on; do not make them retry
		return
	}
	if err != nil {
		reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "malformed", http.StatusBadRequest, err)
		return
	}
	switch n.Event {
	case yookassa.EventRefundSucceeded:
		y.refund(w, r, n.Refund.PaymentID)
	default:
		y.payment(w, r, n.Payment.ID)
	}
}

// payment handles payment.succeeded, waiting_for_capture and canceled by
// what the API says now.
func (y *YooKassa) payment(w http.ResponseWriter, r *http.Request, id string) {
	p, ok := y.fetch(w, r, id)
	if !ok {
		return
	}
	orderID, err := strconv.ParseInt(p.Metadata["order_id"], 10, 64)
	if err != nil {
		reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "rejected", http.StatusOK, fmt.Errorf("payment %s carries no order id", p.ID))
		return
	}
	switch p.Status {
	case "succeeded":
		amount, err := p.Amount.Minor()
		if err != nil {
			reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "rejected", http.StatusOK, fmt.Errorf("payment %s amount: %w", p.ID, err))
			return
		}
		credit(r.Context(), y.svc, y.metrics, y.log, w, service.Payment{Provider: providerYooKassa, ProviderPaymentID: p.ID,
			OrderID: orderID, Amount: amount, Currency: p.Amount.Currency})
	case "canceled":
		if err := y.svc.CancelOrder(r.Context(), orderID); err != nil {
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		y.metrics.Payment(providerYooKassa, "canceled")
		w.WriteHeader(http.StatusOK)
	default:
		// pending or waiting_for_capture: a forged "succeeded" lands here.
		y.metrics.Payment(providerYooKassa, "not_paid")
		y.log.WarnContext(r.Context(), "notification for a payment that is not paid", "payment", p.ID, "status", p.Status)
		w.WriteHeader(http.StatusOK)
	}
}

// refund reverses the credit once the API shows the payment fully refunded.
func (y *YooKassa) refund(w http.ResponseWriter, r *http.Request, paymentID string) {
	p, ok := y.fetch(w, r, paymentID)
	if !ok {
		return
	}
	paid, err1 := p.Amount.Minor()
	var refunded int64
	var err2 error
	if p.RefundedAmount != nil {
		refunded, err2 = p.RefundedAmount.Minor()
	}
	if err1 != nil || err2 != nil || refunded < paid {
		y.metrics.Payment(providerYooKassa, "partial_refund")
		y.log.WarnContext(r.Context(), "refund notification without a full refund; credit kept, look at it by hand", "payment", p.ID, "refunded", refunded, "paid", paid)
		w.WriteHeader(http.StatusOK)
		return
	}
	res, err := y.svc.Refund(r.Context(), providerYooKassa, p.ID)
	switch {
	case errors.Is(err, wgbot.ErrPaymentNotFound):
		y.metrics.Payment(providerYooKassa, "rejected")
		w.WriteHeader(http.StatusOK)
	case err != nil:
		y.log.ErrorContext(r.Context(), "refund could not be recorded; YooKassa will retry", "payment", p.ID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	default:
		if !res.Duplicate {
			y.metrics.Payment(providerYooKassa, "refunded")
			y.log.InfoContext(r.Context(), "payment refunded", "payment", p.ID, "user", res.UserID, "days", res.Days, "revoked", res.Revoked)
		}
		w.WriteHeader(http.StatusOK)
	}
}

// fetch asks the API for the payment; if YooKassa cannot be reached the
// notification is answered 503 so it is delivered again later.
func (y *YooKassa) fetch(w http.ResponseWriter, r *http.Request, id string) (yookassa.Payment, bool) {
	p, err := y.client.GetPayment(r.Context(), id)
	switch {
	case errors.Is(err, yookassa.ErrNotFound):
		reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "forged", http.StatusOK, fmt.Errorf("payment %s does not exist at YooKassa", id))
		return p, false
	case err != nil:
		y.metrics.Payment(providerYooKassa, "unavailable")
		y.log.WarnContext(r.Context(), "cannot verify a notification now; YooKassa will retry", "payment", id, "err", err)
		http.Error(w, "verification unavailable", http.StatusServiceUnavailable)
		return p, false
	}
	return p, true
}
