package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
	Receipts         ReceiptConfig
	// Autorenew: the checkout screen offers "renew automatically with
	// this card"; a payer who ticks it (or agreed with /autorenew on) has
	// the card saved, and RenewDue charges it before expiry.
	Autorenew bool
}

// ReceiptConfig is the YOOKASSA_RECEIPT* settings: whether every payment
// carries a 54-FZ receipt, and what its one line says.
type ReceiptConfig struct {
	On            bool
	Item          string // the line's description; "%s" (if present) becomes the plan's name
	VATCode       int    // 1-12, as YooKassa numbers them
	TaxSystemCode int    // 0: not sent (a shop with one tax system); else 1-6
}

// DefaultReceiptItem describes the line when YOOKASSA_RECEIPT_ITEM is unset.
const DefaultReceiptItem = "VPN access, plan %s"

func (c ReceiptConfig) validate() error {
	if !c.On {
		return nil
	}
	var problems []error
	if !yookassa.ValidVATCode(c.VATCode) {
		problems = append(problems, fmt.Errorf("YOOKASSA_VAT_CODE: want 1-12, got %d", c.VATCode))
	}
	if c.TaxSystemCode != 0 && !yookassa.ValidTaxSystemCode(c.TaxSystemCode) {
		problems = append(problems, fmt.Errorf("YOOKASSA_TAX_SYSTEM_CODE: want 1-6 or unset, got %d", c.TaxSystemCode))
	}
	if strings.TrimSpace(c.Item) == "" || strings.Count(c.Item, "%") > strings.Count(c.Item, "%s") {
		problems = append(problems, fmt.Errorf("YOOKASSA_RECEIPT_ITEM: want a description with at most a %%s for the plan, got %q", c.Item))
	}
	return errors.Join(problems...)
}

// YooKassa opens checkouts and accepts notifications.
type YooKassa struct {
	client      *yookassa.Client
	svc         Orders
	allow       *yookassa.IPAllowList
	proxyHeader string
	returnURL   string
	receipts    ReceiptConfig
	autorenew   bool
	metrics     *metrics.Metrics
	log         *slog.Logger
}

// NewYooKassa checks the settings and returns the adapter.
func NewYooKassa(cfg YooKassaConfig, svc Orders, m *metrics.Metrics, log *slog.Logger) (*YooKassa, error) {
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
	if u, err := url.Parse(cfg.ReturnURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("YOOKASSA_RETURN_URL: want the http(s) URL the payer returns to, such as https://t.me/your_bot; got %q", cfg.ReturnURL)
	}
	if cfg.Receipts.On && cfg.Receipts.Item == "" {
		cfg.Receipts.Item = DefaultReceiptItem
	}
	if err := cfg.Receipts.validate(); err != nil {
		return nil, err
	}
	return &YooKassa{
		client: &yookassa.Client{BaseURL: cfg.BaseURL, ShopID: cfg.ShopID, SecretKey: cfg.SecretKey},
		svc:    svc, allow: allow, proxyHeader: cfg.TrustProxyHeader, returnURL: cfg.ReturnURL, receipts: cfg.Receipts, autorenew: cfg.Autorenew, metrics: m, log: log,
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

// TitleVia names the method inside a sentence ("через банковскую карту"),
// for the bot.
func (y *YooKassa) TitleVia(lang string) string {
	if lang == "ru" {
		return "банковскую карту (ЮKassa)"
	}
	return "a bank card (YooKassa)"
}

// Start creates the payment with the order in its metadata. The
// idempotence key is the order id, so a retried button press or a lost
// answer never opens a second charge for one order. An order whose payer
// ticked "renew automatically with this card" at checkout
// (wgbot.Order.SaveCard) has its card saved, when renewals are on.
//
// With receipts on, a user who has not given an email or phone yet gets
// wgbot.ErrReceiptContactNeeded, and no payment is created.
func (y *YooKassa) Start(ctx context.Context, order wgbot.Order, user wgbot.User) (string, error) {
	return y.start(ctx, order, user, y.autorenew && order.SaveCard)
}

// SavesCards says whether the checkout offers to save the card for
// renewals (YOOKASSA_AUTORENEW), for the bot's checkbox.
func (y *YooKassa) SavesCards() bool {
	_, ok := y.svc.(Renewals)
	return y.autorenew && ok
}

func (y *YooKassa) start(ctx context.Context, order wgbot.Order, user wgbot.User, save bool) (string, error) {
	req := yookassa.CreatePaymentRequest{
		Amount:      yookassa.AmountFromMinor(order.Amount, order.Currency),
		Description: fmt.Sprintf("VPN %s, order %d", order.Plan, order.ID),
		ReturnURL:   y.returnURL,
		Metadata:    map[string]string{"order_id": strconv.FormatInt(order.ID, 10), "user": strconv.FormatInt(user.TelegramID, 10)},
	}
	if y.receipts.On {
		r, err := y.receipt(ctx, order)
		if err != nil {
			return "", err
		}
		req.Receipt = &r
	}
	if save {
		if _, ok := y.svc.(Renewals); !ok {
			return "", errNoRenewals
		}
		req.SavePaymentMethod = true
		req.Metadata["autorenew"] = "1"
		req.Metadata["user_id"] = strconv.FormatInt(order.UserID, 10)
		req.Metadata["plan"] = order.Plan
	}
	key := "wgbot-order-" + strconv.FormatInt(order.ID, 10)
	if save {
		key += "-save" // another request than the plain checkout's
	}
	p, err := y.client.CreatePayment(ctx, req, key)
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

// receipt is the order's receipt: one line, the whole amount, to the
// contact the user gave.
func (y *YooKassa) receipt(ctx context.Context, order wgbot.Order) (yookassa.Receipt, error) {
	contact, err := y.svc.ReceiptContact(ctx, order.UserID)
	if err != nil {
		return yookassa.Receipt{}, fmt.Errorf("receipt contact of user %d: %w", order.UserID, err)
	}
	if contact == "" {
		return yookassa.Receipt{}, wgbot.ErrReceiptContactNeeded
	}
	var customer yookassa.Customer
	if strings.Contains(contact, "@") {
		customer.Email = contact
	} else {
		customer.Phone = contact
	}
	item := y.receipts.Item
	if strings.Contains(item, "%s") {
		item = fmt.Sprintf(item, order.Plan)
	}
	if r := []rune(item); len(r) > 128 {
		item = string(r[:128])
	}
	return yookassa.Receipt{Customer: customer, TaxSystemCode: y.receipts.TaxSystemCode, Items: []yookassa.ReceiptItem{{
		Description: item, Quantity: "1", Amount: yookassa.AmountFromMinor(order.Amount, order.Currency),
		VATCode: y.receipts.VATCode, PaymentSubject: yookassa.SubjectService, PaymentMode: yookassa.ModeFullPay,
	}}}, nil
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
		amount, err1 := p.Amount.Minor()
		refunded, err2 := refundedMinor(p)
		if err := errors.Join(err1, err2); err != nil {
			reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "rejected", http.StatusOK, fmt.Errorf("payment %s amount: %w", p.ID, err))
			return
		}
		pay := service.Payment{Provider: providerYooKassa, ProviderPaymentID: p.ID, OrderID: orderID, Amount: amount, Currency: p.Amount.Currency}
		if refunded > 0 {
			// YooKassa keeps a refunded payment "succeeded": money that
			// went back, in whole or in part, never buys the period.
			y.settleRefund(w, r, service.ProviderRefund{Payment: pay, Refunded: refunded})
			return
		}
		if err := y.keepCard(r.Context(), p); err != nil {
			y.log.ErrorContext(r.Context(), "saved card could not be stored; YooKassa will retry", "payment", p.ID, "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		credit(r.Context(), y.svc, y.metrics, y.log, w, pay)
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

// refund applies a refund.succeeded by what the API says of the payment
// now: a whole refund reverses the credit, a partial one keeps it (flagged
// for the operator), and a payment never credited is recorded as settled so
// that its own notice, arriving later, credits nothing.
func (y *YooKassa) refund(w http.ResponseWriter, r *http.Request, paymentID string) {
	p, ok := y.fetch(w, r, paymentID)
	if !ok {
		return
	}
	orderID, err1 := strconv.ParseInt(p.Metadata["order_id"], 10, 64)
	paid, err2 := p.Amount.Minor()
	refunded, err3 := refundedMinor(p)
	if err := errors.Join(err1, err2, err3); err != nil || p.Status != "succeeded" {
		reject(r.Context(), y.metrics, y.log, w, providerYooKassa, "rejected", http.StatusOK,
			fmt.Errorf("refund of payment %s (%s) is not one of a wgbot order: %v", p.ID, p.Status, err))
		return
	}
	if refunded == 0 {
		// Forged, or the refund is not through yet: nothing to apply.
		y.metrics.Payment(providerYooKassa, "not_refunded")
		y.log.WarnContext(r.Context(), "refund notification for a payment with nothing refunded", "payment", p.ID)
		w.WriteHeader(http.StatusOK)
		return
	}
	y.settleRefund(w, r, service.ProviderRefund{Payment: service.Payment{Provider: providerYooKassa, ProviderPaymentID: p.ID,
		OrderID: orderID, Amount: paid, Currency: p.Amount.Currency}, Refunded: refunded, Reverse: true})
}

func (y *YooKassa) settleRefund(w http.ResponseWriter, r *http.Request, ref service.ProviderRefund) {
	ctx, id := r.Context(), ref.Payment.ProviderPaymentID
	res, err := y.svc.SettleRefund(ctx, ref)
	switch {
	case errors.Is(err, wgbot.ErrOrderNotFound), wgbot.ErrorCode(err) == wgbot.EInvalid:
		reject(ctx, y.metrics, y.log, w, providerYooKassa, "rejected", http.StatusOK, err) // a retry would not change it
		return
	case err != nil:
		y.log.ErrorContext(ctx, "refund could not be recorded; YooKassa will retry", "payment", id, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	case res.Settled:
		y.metrics.Payment(providerYooKassa, "refunded_uncredited")
		y.log.WarnContext(ctx, "payment refunded before it was credited; recorded, no days given", "payment", id,
			"refunded", ref.Refunded, "paid", ref.Payment.Amount)
	case res.Kept && ref.Reverse:
		y.metrics.Payment(providerYooKassa, "partial_refund")
		y.log.WarnContext(ctx, "partial refund; credit kept and flagged, look at it by hand", "payment", id,
			"refunded", ref.Refunded, "paid", ref.Payment.Amount)
	case res.Kept, res.Duplicate:
		y.metrics.Payment(providerYooKassa, "duplicate")
	default:
		y.metrics.Payment(providerYooKassa, "refunded")
		y.log.InfoContext(ctx, "payment refunded", "payment", id, "user", res.UserID, "days", res.Days, "revoked", res.Revoked)
	}
	w.WriteHeader(http.StatusOK)
}

// refundedMinor is how much of the payment went back, in minor units.
func refundedMinor(p yookassa.Payment) (int64, error) {
	if p.RefundedAmount == nil {
		return 0, nil
	}
	if p.RefundedAmount.Currency != p.Amount.Currency {
		return 0, fmt.Errorf("refunded in %s, paid in %s", p.RefundedAmount.Currency, p.Amount.Currency)
	}
	return p.RefundedAmount.Minor()
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

// refundKey is the Idempotence-Key of the refund of payment id: the same
// for every attempt, so a double click, a retry or a second process asks
// YooKassa for one refund and gets that one back.
func refundKey(id string) string { return "wgbot-refund-" + id }

// ReturnPayment implements telegram.Refunder: it refunds what is left of
// the payment at YooKassa (all of it, unless some went back by hand in
// the dashboard). A payment already wholly refunded asks for nothing, so
// the ledger can follow it; the refund's own notice, arriving later, is
// then a duplicate.
func (y *YooKassa) ReturnPayment(ctx context.Context, id string) (string, error) {
	p, err := y.client.GetPayment(ctx, id)
	if err != nil {
		return "", y.refundError(ctx, id, err)
	}
	if p.Status != yookassa.StatusSucceeded {
		return "", wgbot.Errorf(wgbot.EInvalid, "refund_state", "YooKassa payment %s is %s: only a succeeded payment can be refunded", id, p.Status)
	}
	paid, err1 := p.Amount.Minor()
	refunded, err2 := refundedMinor(p)
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("yookassa payment %s: %w", id, err)
	}
	if refunded >= paid {
		return "", nil
	}
	r, err := y.client.CreateRefund(ctx, id, yookassa.AmountFromMinor(paid-refunded, p.Amount.Currency), refundKey(id))
	if err != nil {
		return "", y.refundError(ctx, id, err)
	}
	y.log.InfoContext(ctx, "payment refunded at YooKassa", "payment", id, "refund", r.ID, "status", r.Status, "amount", r.Amount.Value)
	return "", nil
}

// refundError says what an admin can do about a refused refund:
// YooKassa's own reason when it refused, "try again" when unreachable (the
// details go to the log).
func (y *YooKassa) refundError(ctx context.Context, id string, err error) error {
	y.log.WarnContext(ctx, "refund at YooKassa failed", "payment", id, "err", err)
	switch {
	case errors.Is(err, yookassa.ErrNotFound):
		return wgbot.Errorf(wgbot.ENotFound, "refund_unknown", "YooKassa knows no payment %s", id)
	case errors.Is(err, yookassa.ErrInvalid):
		return wgbot.Errorf(wgbot.EInvalid, "refund_refused", "YooKassa refused the refund of %s: %v", id, err)
	}
	return wgbot.Errorf(wgbot.EUnavailable, "refund_unavailable", "YooKassa cannot be reached to refund %s; nothing was changed, try again", id)
}
