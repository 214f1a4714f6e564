package payment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"wgbot"
	"wgbot/metrics"
	"wgbot/payment/cryptopay"
	"wgbot/service"
)

const providerCryptoPay = "cryptopay"

// CryptoPayConfig is the CRYPTOPAY_* settings.
type CryptoPayConfig struct {
	BaseURL string
	Token   string
	Fiat    string // plan price currency, e.g. USD; the payer picks the crypto asset
}

// CryptoPay opens invoices and accepts signed webhooks.
type CryptoPay struct {
	client  *cryptopay.Client
	token   string
	fiat    string
	svc     Orders
	metrics *metrics.Metrics
	log     *slog.Logger
}

// NewCryptoPay returns the adapter.
func NewCryptoPay(cfg CryptoPayConfig, svc Orders, m *metrics.Metrics, log *slog.Logger) (*CryptoPay, error) {
	if cfg.Token == "" {
		return nil, errors.New("CRYPTOPAY_TOKEN is required to accept Crypto Pay")
	}
	if cfg.Fiat == "" {
		cfg.Fiat = "USD"
	}
	return &CryptoPay{client: &cryptopay.Client{BaseURL: cfg.BaseURL, Token: cfg.Token}, token: cfg.Token, fiat: cfg.Fiat,
		svc: svc, metrics: m, log: log}, nil
}

// Provider implements telegram.Checkout.
func (c *CryptoPay) Provider() string { return providerCryptoPay }

// Currency implements telegram.Checkout.
func (c *CryptoPay) Currency() string { return c.fiat }

// Title implements telegram.Checkout.
func (c *CryptoPay) Title(lang string) string {
	if lang == "ru" {
		return "Криптовалюта (Crypto Pay)"
	}
	return "Crypto (Crypto Pay)"
}

// TitleVia names the method inside a sentence ("через криптовалюту"), for
// the bot.
func (c *CryptoPay) TitleVia(lang string) string {
	if lang == "ru" {
		return "криптовалюту (Crypto Pay)"
	}
	return "crypto (Crypto Pay)"
}

// Start creates a fiat-priced invoice carrying the order id. Crypto Pay
// has no idempotence key, so when an earlier attempt for this order may
// have created an invoice whose answer was lost (order.CheckoutTries > 1),
// that invoice is looked up by its payload and reused. The invoice expires
// with the order.
func (c *CryptoPay) Start(ctx context.Context, order wgbot.Order, user wgbot.User) (string, error) {
	payload := strconv.FormatInt(order.ID, 10)
	if order.CheckoutTries > 1 {
		inv, ok, err := c.client.ActiveInvoice(ctx, payload)
		if err != nil {
			return "", c.startError(order, err)
		}
		if ok && inv.CurrencyType == cryptopay.CurrencyFiat && inv.Fiat == order.Currency {
			c.log.InfoContext(ctx, "crypto pay invoice of an earlier attempt reused", "order", order.ID, "invoice", inv.InvoiceID)
			return c.started(ctx, order, inv)
		}
	}
	amount, err := cryptopay.FormatAmount(order.Amount, 2)
	if err != nil {
		return "", err
	}
	inv, err := c.client.CreateInvoice(ctx, cryptopay.CreateInvoiceRequest{
		CurrencyType: cryptopay.CurrencyFiat, Fiat: order.Currency, Amount: amount,
		Payload: payload, Description: fmt.Sprintf("VPN %s, order %d", order.Plan, order.ID),
		ExpiresIn: time.Until(order.ExpiresAt).Truncate(time.Second),
	})
	if err != nil {
		return "", c.startError(order, err)
	}
	return c.started(ctx, order, inv)
}

func (c *CryptoPay) started(ctx context.Context, order wgbot.Order, inv cryptopay.Invoice) (string, error) {
	if err := c.svc.SetOrderRef(ctx, order.ID, strconv.FormatInt(inv.InvoiceID, 10)); err != nil {
		return "", err
	}
	return inv.BotInvoiceURL, nil
}

func (c *CryptoPay) startError(order wgbot.Order, err error) error {
	if errors.Is(err, cryptopay.ErrUnavailable) {
		return wgbot.Errorf(wgbot.EUnavailable, "provider_unavailable", "Crypto Pay is unavailable: %v", err)
	}
	return fmt.Errorf("crypto pay invoice for order %d: %w", order.ID, err)
}

// ServeHTTP accepts Crypto Pay's webhook. The signature over the raw body
// is checked before anything is parsed; the invoice id dedupes (update_id
// is not unique per payment).
func (c *CryptoPay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, status, err := readBody(w, r)
	if err != nil {
		reject(r.Context(), c.metrics, c.log, w, providerCryptoPay, "bad_request", status, err)
		return
	}
	if !cryptopay.VerifySignature(c.token, body, r.Header.Get(cryptopay.SignatureHeader)) {
		reject(r.Context(), c.metrics, c.log, w, providerCryptoPay, "forged", http.StatusUnauthorized, errors.New("signature does not match the body"))
		return
	}
	u, err := cryptopay.ParseUpdate(body)
	if errors.Is(err, cryptopay.ErrUnsupportedUpdate) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		reject(r.Context(), c.metrics, c.log, w, providerCryptoPay, "malformed", http.StatusBadRequest, err)
		return
	}
	inv := u.Invoice
	orderID, err := strconv.ParseInt(inv.Payload, 10, 64)
	if err != nil || inv.CurrencyType != cryptopay.CurrencyFiat {
		reject(r.Context(), c.metrics, c.log, w, providerCryptoPay, "rejected", http.StatusOK, fmt.Errorf("invoice %d is not a wgbot order", inv.InvoiceID))
		return
	}
	amount, err := cryptopay.ParseAmount(inv.Amount, 2)
	if err != nil {
		reject(r.Context(), c.metrics, c.log, w, providerCryptoPay, "rejected", http.StatusOK, fmt.Errorf("invoice %d amount: %w", inv.InvoiceID, err))
		return
	}
	credit(r.Context(), c.svc, c.metrics, c.log, w, service.Payment{Provider: providerCryptoPay,
		ProviderPaymentID: strconv.FormatInt(inv.InvoiceID, 10), OrderID: orderID, Amount: amount, Currency: inv.Fiat, Raw: body})
}

// ReturnPayment implements telegram.Refunder. The Crypto Pay API has no
// refund of an invoice: its one way to send money out, transfer, is a new
// payment from the app's balance that the app's owner must first enable
// in @CryptoBot, needs that balance in the asset paid, and cannot be taken
// back if sent twice or to the wrong user. So wgbot does not send it: the
// ledger records the refund, and the note tells the admin what to send
// back by hand. The invoice is read only to name the paid asset and
// amount; if it cannot be read, the note says where to look.
func (c *CryptoPay) ReturnPayment(ctx context.Context, id string) (string, error) {
	invoiceID, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return "", wgbot.Errorf(wgbot.EInvalid, "bad_charge", "%q is not a Crypto Pay invoice id", id)
	}
	paid := "the amount paid"
	list, err := c.client.GetInvoices(ctx, invoiceID)
	switch {
	case err != nil:
		c.log.WarnContext(ctx, "cannot read the invoice of a refund; the note names no amount", "invoice", id, "err", err)
	case len(list) == 1 && list[0].PaidAsset != "":
		paid = list[0].PaidAmount + " " + list[0].PaidAsset
	}
	return fmt.Sprintf("Crypto Pay cannot refund invoice %s: send %s back to the payer by hand (a transfer from the app's balance in @CryptoBot)", id, paid), nil
}
