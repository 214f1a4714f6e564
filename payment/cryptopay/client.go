package cryptopay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is Crypto Pay's mainnet API; the testnet is
// https://testnet-pay.crypt.bot/api. The client appends "/methodName".
const DefaultBaseURL = "https://pay.crypt.bot/api"

// Invoice statuses.
const (
	StatusActive  = "active"
	StatusPaid    = "paid"
	StatusExpired = "expired"
)

// Currency types of an invoice.
const (
	CurrencyCrypto = "crypto" // Amount is in Asset
	CurrencyFiat   = "fiat"   // Amount is in Fiat; the payer picks a crypto asset
)

// Limits Crypto Pay documents for createInvoice.
const (
	maxPayloadBytes      = 4096
	maxDescriptionRunes  = 1024
	maxExpiresInSeconds  = 2678400 // 31 days
	maxInvoicesPerLookup = 1000
	maxResponseBytes     = 4 << 20 // a thousand invoices fit comfortably
	defaultTimeout       = 30 * time.Second
)

// Client calls the Crypto Pay API with the app's token in the
// Crypto-Pay-API-Token header. It is safe for concurrent use.
type Client struct {
	BaseURL string       // DefaultBaseURL when empty; an emulator's BaseURL in tests
	Token   string       // the app's API token; never logged
	HTTP    *http.Client // a client with a 30 s timeout when nil
}

// String keeps the token out of logs even if someone prints the Client.
func (c *Client) String() string {
	return fmt.Sprintf("cryptopay.Client{BaseURL: %q}", c.baseURL())
}

// GoString does the same for %#v.
func (c *Client) GoString() string { return c.String() }

// App is what getMe says about the app the token belongs to.
type App struct {
	AppID                        int64  `json:"app_id"`
	Name                         string `json:"name"`
	PaymentProcessingBotUsername string `json:"payment_processing_bot_username"`
}

// Invoice is Crypto Pay's invoice object, reduced to the fields wgbot reads.
// Amounts stay strings, exactly as the API writes them.
type Invoice struct {
	InvoiceID         int64      `json:"invoice_id"`
	Hash              string     `json:"hash"`
	CurrencyType      string     `json:"currency_type"`
	Asset             string     `json:"asset,omitempty"` // for crypto invoices
	Fiat              string     `json:"fiat,omitempty"`  // for fiat invoices
	Amount            string     `json:"amount"`
	PaidAsset         string     `json:"paid_asset,omitempty"`
	PaidAmount        string     `json:"paid_amount,omitempty"`
	PaidFiatRate      string     `json:"paid_fiat_rate,omitempty"`
	PaidUSDRate       string     `json:"paid_usd_rate,omitempty"`
	BotInvoiceURL     string     `json:"bot_invoice_url"`
	MiniAppInvoiceURL string     `json:"mini_app_invoice_url,omitempty"`
	WebAppInvoiceURL  string     `json:"web_app_invoice_url,omitempty"`
	Description       string     `json:"description,omitempty"`
	Status            string     `json:"status"`
	CreatedAt         time.Time  `json:"created_at"`
	PaidAt            *time.Time `json:"paid_at,omitempty"`
	ExpirationDate    *time.Time `json:"expiration_date,omitempty"`
	Payload           string     `json:"payload,omitempty"`
}

// CreateInvoiceRequest is what wgbot asks the payer to pay.
type CreateInvoiceRequest struct {
	CurrencyType string        // CurrencyCrypto (default) or CurrencyFiat
	Asset        string        // crypto invoices: USDT, TON, BTC, ...
	Fiat         string        // fiat invoices: USD, EUR, RUB, ...
	Amount       string        // decimal string, e.g. "199" or "2.5"; see FormatAmount
	Payload      string        // echoed back in the invoice; wgbot puts its order id here
	Description  string        // shown to the payer; at most 1024 characters
	ExpiresIn    time.Duration // 0: never; else 1 s to 31 days, whole seconds
}

type createInvoiceBody struct {
	CurrencyType string `json:"currency_type"`
	Asset        string `json:"asset,omitempty"`
	Fiat         string `json:"fiat,omitempty"`
	Amount       string `json:"amount"`
	Payload      string `json:"payload,omitempty"`
	Description  string `json:"description,omitempty"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
}

// GetMe returns the app the token belongs to; a cheap start-up check that the
// token works.
func (c *Client) GetMe(ctx context.Context) (App, error) {
	var app App
	if err := c.call(ctx, "getMe", struct{}{}, &app); err != nil {
		return App{}, fmt.Errorf("cryptopay: getMe: %w", err)
	}
	return app, nil
}

// CreateInvoice creates an invoice and returns it with the URL to send the payer.
func (c *Client) CreateInvoice(ctx context.Context, req CreateInvoiceRequest) (Invoice, error) {
	body, err := invoiceBody(req)
	if err != nil {
		return Invoice{}, fmt.Errorf("cryptopay: createInvoice: %w", err)
	}
	var inv Invoice
	if err := c.call(ctx, "createInvoice", body, &inv); err != nil {
		return Invoice{}, fmt.Errorf("cryptopay: createInvoice: %w", err)
	}
	if inv.InvoiceID == 0 {
		return Invoice{}, fmt.Errorf("cryptopay: createInvoice: %w: answer has no invoice_id", ErrUnavailable)
	}
	return inv, nil
}

// GetInvoices returns the invoices with these ids (unknown ids are simply
// absent), or the latest 100 when no id is given.
func (c *Client) GetInvoices(ctx context.Context, ids ...int64) ([]Invoice, error) {
	if len(ids) > maxInvoicesPerLookup {
		return nil, fmt.Errorf("cryptopay: getInvoices: %w: %d ids, at most %d per call", ErrInvalid, len(ids), maxInvoicesPerLookup)
	}
	var params struct {
		InvoiceIDs string `json:"invoice_ids,omitempty"`
		Count      int    `json:"count,omitempty"`
	}
	if len(ids) > 0 {
		s := make([]string, len(ids))
		for i, id := range ids {
			s[i] = strconv.FormatInt(id, 10)
		}
		// The API pages at 100 by default; ask for all of them at once.
		params.InvoiceIDs, params.Count = strings.Join(s, ","), len(ids)
	}
	var result struct {
		Items []Invoice `json:"items"`
	}
	if err := c.call(ctx, "getInvoices", params, &result); err != nil {
		return nil, fmt.Errorf("cryptopay: getInvoices: %w", err)
	}
	return result.Items, nil
}

// ActiveInvoice finds the newest active invoice carrying payload, so a
// caller whose createInvoice answer was lost can reuse the invoice it may
// have made. Crypto Pay cannot filter by payload: the latest 1000 active
// invoices are searched, enough for an invoice made moments ago.
func (c *Client) ActiveInvoice(ctx context.Context, payload string) (Invoice, bool, error) {
	params := struct {
		Status string `json:"status"`
		Count  int    `json:"count"`
	}{StatusActive, maxInvoicesPerLookup}
	var result struct {
		Items []Invoice `json:"items"`
	}
	if err := c.call(ctx, "getInvoices", params, &result); err != nil {
		return Invoice{}, false, fmt.Errorf("cryptopay: getInvoices: %w", err)
	}
	for _, inv := range result.Items {
		if inv.Payload == payload && inv.Status == StatusActive {
			return inv, true, nil
		}
	}
	return Invoice{}, false, nil
}

func invoiceBody(req CreateInvoiceRequest) (createInvoiceBody, error) {
	var problems []string
	body := createInvoiceBody{
		CurrencyType: req.CurrencyType,
		Amount:       req.Amount,
		Payload:      req.Payload,
		Description:  req.Description,
	}
	if body.CurrencyType == "" {
		body.CurrencyType = CurrencyCrypto
	}
	switch body.CurrencyType {
	case CurrencyCrypto:
		if req.Asset == "" {
			problems = append(problems, "a crypto invoice needs an asset")
		}
		if req.Fiat != "" {
			problems = append(problems, "a crypto invoice takes no fiat currency")
		}
		body.Asset = req.Asset
	case CurrencyFiat:
		if req.Fiat == "" {
			problems = append(problems, "a fiat invoice needs a fiat currency")
		}
		if req.Asset != "" {
			problems = append(problems, "a fiat invoice takes no asset (the payer picks one)")
		}
		body.Fiat = req.Fiat
	default:
		problems = append(problems, fmt.Sprintf("currency type %q is neither crypto nor fiat", req.CurrencyType))
	}
	if err := checkAmount(req.Amount); err != nil {
		problems = append(problems, err.Error())
	}
	if len(req.Payload) > maxPayloadBytes {
		problems = append(problems, fmt.Sprintf("payload has %d bytes, at most %d allowed", len(req.Payload), maxPayloadBytes))
	}
	if n := len([]rune(req.Description)); n > maxDescriptionRunes {
		problems = append(problems, fmt.Sprintf("description has %d characters, at most %d allowed", n, maxDescriptionRunes))
	}
	if req.ExpiresIn != 0 {
		if req.ExpiresIn < time.Second || req.ExpiresIn > maxExpiresInSeconds*time.Second || req.ExpiresIn%time.Second != 0 {
			problems = append(problems, fmt.Sprintf("expires in %s: want whole seconds from 1s to 744h", req.ExpiresIn))
		}
		body.ExpiresIn = int64(req.ExpiresIn / time.Second)
	}
	if len(problems) > 0 {
		return createInvoiceBody{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return body, nil
}

// call POSTs params as JSON to one API method and decodes the result into
// out. Every failure comes back classified as ErrUnavailable or ErrInvalid.
func (c *Client) call(ctx context.Context, method string, params, out any) error {
	b, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("%w: encode request: %w", ErrInvalid, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL()+"/"+method, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: build request: %w", ErrInvalid, err)
	}
	req.Header.Set("Crypto-Pay-API-Token", c.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	}
	if len(raw) > maxResponseBytes {
		return fmt.Errorf("%w: answer larger than %d bytes", ErrUnavailable, maxResponseBytes)
	}

	var envelope struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code int    `json:"code"`
			Name string `json:"name"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		// Not Crypto Pay's envelope: a proxy's page or a cut-off answer.
		// Classify by status so a 4xx stays final and the rest retryable.
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("%w: decode answer: %w", ErrUnavailable, err)
		}
		return &APIError{StatusCode: resp.StatusCode}
	}
	if !envelope.OK || resp.StatusCode != http.StatusOK {
		apiErr := &APIError{StatusCode: resp.StatusCode}
		if envelope.Error != nil {
			apiErr.Code, apiErr.Name = envelope.Error.Code, envelope.Error.Name
		}
		return apiErr
	}
	if err := json.Unmarshal(envelope.Result, out); err != nil {
		return fmt.Errorf("%w: decode result: %w", ErrUnavailable, err)
	}
	return nil
}

func (c *Client) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: defaultTimeout}
}
