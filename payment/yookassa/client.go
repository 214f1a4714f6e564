package yookassa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is YooKassa's production API; the client adds "/v3/...".
const DefaultBaseURL = "https://api.yookassa.ru"

// Payment statuses, as the API names them.
const (
	StatusPending           = "pending"
	StatusWaitingForCapture = "waiting_for_capture"
	StatusSucceeded         = "succeeded"
	StatusCanceled          = "canceled"
)

const (
	// maxIdempotenceKeyLen is YooKassa's documented limit for Idempotence-Key.
	maxIdempotenceKeyLen = 64
	// maxDescriptionLen is YooKassa's limit for a payment's description.
	maxDescriptionLen = 128
	// maxResponseBytes bounds what we read from the API; a payment object is
	// a few kilobytes.
	maxResponseBytes = 1 << 20
)

// Timeout bounds one API call when Client.HTTP is nil, so that a hung
// connection cannot hold a request forever; a webhook waits this long at
// most to fetch its payment back.
const Timeout = 30 * time.Second

// Client calls the YooKassa API v3 with HTTP basic auth (shop id, secret key).
// The zero value is not usable: ShopID and SecretKey are required. It is safe
// for concurrent use.
type Client struct {
	BaseURL   string       // DefaultBaseURL when empty; an emulator's URL in tests
	ShopID    string       // basic-auth user
	SecretKey string       // basic-auth password; never logged
	HTTP      *http.Client // a client with a 30 s timeout when nil
}

// String keeps the secret key out of logs even if someone prints the Client.
func (c *Client) String() string {
	return fmt.Sprintf("yookassa.Client{BaseURL: %q, ShopID: %q}", c.baseURL(), c.ShopID)
}

// GoString does the same for %#v.
func (c *Client) GoString() string { return c.String() }

// Confirmation tells the payer where to confirm the payment. wgbot only uses
// the redirect type: the user opens ConfirmationURL and comes back to ReturnURL.
type Confirmation struct {
	Type            string `json:"type"`
	ReturnURL       string `json:"return_url,omitempty"`
	ConfirmationURL string `json:"confirmation_url,omitempty"`
}

// CancellationDetails says who canceled a payment and why.
type CancellationDetails struct {
	Party  string `json:"party"`  // yoo_money, payment_network or merchant
	Reason string `json:"reason"` // e.g. expired_on_confirmation, insufficient_funds, card_expired, permission_revoked
}

// PaymentMethod is how a payment was paid. Saved is true when the payer
// agreed to keep it (save_payment_method) and it may be charged again by ID
// without the payer.
type PaymentMethod struct {
	Type  string `json:"type"` // e.g. bank_card
	ID    string `json:"id"`
	Saved bool   `json:"saved"`
	Title string `json:"title,omitempty"` // e.g. "Bank card *4477"
}

// Payment is YooKassa's payment object, reduced to the fields wgbot reads.
type Payment struct {
	ID                  string               `json:"id"`
	Status              string               `json:"status"`
	Paid                bool                 `json:"paid"`
	Amount              Amount               `json:"amount"`
	IncomeAmount        *Amount              `json:"income_amount,omitempty"`
	RefundedAmount      *Amount              `json:"refunded_amount,omitempty"`
	Description         string               `json:"description,omitempty"`
	Confirmation        *Confirmation        `json:"confirmation,omitempty"`
	CreatedAt           time.Time            `json:"created_at"`
	CapturedAt          *time.Time           `json:"captured_at,omitempty"`
	ExpiresAt           *time.Time           `json:"expires_at,omitempty"`
	Metadata            map[string]string    `json:"metadata,omitempty"`
	CancellationDetails *CancellationDetails `json:"cancellation_details,omitempty"`
	PaymentMethod       *PaymentMethod       `json:"payment_method,omitempty"`
	Refundable          bool                 `json:"refundable"`
	Test                bool                 `json:"test"`
}

// Refund is YooKassa's refund object.
type Refund struct {
	ID          string    `json:"id"`
	PaymentID   string    `json:"payment_id"`
	Status      string    `json:"status"` // pending, succeeded or canceled
	Amount      Amount    `json:"amount"`
	CreatedAt   time.Time `json:"created_at"`
	Description string    `json:"description,omitempty"`
}

// CreatePaymentRequest is what wgbot asks YooKassa to charge.
type CreatePaymentRequest struct {
	Amount      Amount            // e.g. {"199.00", "RUB"}
	Description string            // shown to the payer; at most 128 characters
	ReturnURL   string            // where the payer lands after confirming
	Metadata    map[string]string // echoed back in the payment; wgbot puts its order id here
	// Receipt, when set, is the 54-FZ receipt YooKassa registers.
	Receipt *Receipt
	// SavePaymentMethod asks YooKassa to keep the card for later charges;
	// the payer must have agreed to it.
	SavePaymentMethod bool
	// PaymentMethodID charges a saved method without the payer: no
	// confirmation, no ReturnURL; the answer is already final or pending.
	PaymentMethodID string
}

// createPaymentBody is the wire form of CreatePaymentRequest.
type createPaymentBody struct {
	Amount Amount `json:"amount"`
	// Capture is always true: wgbot sells a service it delivers at once, so a
	// two-stage payment would only add a state that expires by itself after
	// a few days and has to be captured by hand.
	Capture           bool              `json:"capture"`
	Confirmation      *Confirmation     `json:"confirmation,omitempty"`
	Description       string            `json:"description,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	Receipt           *Receipt          `json:"receipt,omitempty"`
	SavePaymentMethod bool              `json:"save_payment_method,omitempty"`
	PaymentMethodID   string            `json:"payment_method_id,omitempty"`
}

type createRefundBody struct {
	PaymentID string `json:"payment_id"`
	Amount    Amount `json:"amount"`
}

// CreatePayment creates a one-stage payment with a redirect confirmation.
// idempotenceKey must be unique per order and reused verbatim on every retry
// of that order's request: YooKassa then returns the payment it already
// created instead of charging twice.
func (c *Client) CreatePayment(ctx context.Context, req CreatePaymentRequest, idempotenceKey string) (Payment, error) {
	if err := validateCreatePayment(req, idempotenceKey); err != nil {
		return Payment{}, fmt.Errorf("yookassa: create payment: %w", err)
	}
	body := createPaymentBody{
		Amount:            req.Amount,
		Capture:           true,
		Description:       req.Description,
		Metadata:          req.Metadata,
		Receipt:           req.Receipt,
		SavePaymentMethod: req.SavePaymentMethod,
		PaymentMethodID:   req.PaymentMethodID,
	}
	if req.PaymentMethodID == "" {
		body.Confirmation = &Confirmation{Type: "redirect", ReturnURL: req.ReturnURL}
	}
	var p Payment
	if err := c.do(ctx, http.MethodPost, "/v3/payments", idempotenceKey, body, &p); err != nil {
		return Payment{}, fmt.Errorf("yookassa: create payment: %w", err)
	}
	if p.ID == "" {
		return Payment{}, fmt.Errorf("yookassa: create payment: %w: answer has no payment id", ErrUnavailable)
	}
	return p, nil
}

// GetPayment fetches a payment's current state. This answer, not a
// notification's body, is what a payment may be credited on.
func (c *Client) GetPayment(ctx context.Context, id string) (Payment, error) {
	if id == "" {
		return Payment{}, fmt.Errorf("yookassa: get payment: %w: empty payment id", ErrInvalid)
	}
	var p Payment
	if err := c.do(ctx, http.MethodGet, "/v3/payments/"+url.PathEscape(id), "", nil, &p); err != nil {
		return Payment{}, fmt.Errorf("yookassa: get payment %s: %w", id, err)
	}
	// The caller credits on this answer, so an answer about another payment
	// (a confused proxy or cache) must not pass as this one.
	if p.ID != id {
		return Payment{}, fmt.Errorf("yookassa: get payment %s: %w: answer is about payment %q", id, ErrUnavailable, p.ID)
	}
	return p, nil
}

// CreateRefund returns amount of a succeeded payment to the payer. As with
// CreatePayment, retries must reuse idempotenceKey.
func (c *Client) CreateRefund(ctx context.Context, paymentID string, amount Amount, idempotenceKey string) (Refund, error) {
	if err := validateRefund(paymentID, amount, idempotenceKey); err != nil {
		return Refund{}, fmt.Errorf("yookassa: refund payment %s: %w", paymentID, err)
	}
	var r Refund
	body := createRefundBody{PaymentID: paymentID, Amount: amount}
	if err := c.do(ctx, http.MethodPost, "/v3/refunds", idempotenceKey, body, &r); err != nil {
		return Refund{}, fmt.Errorf("yookassa: refund payment %s: %w", paymentID, err)
	}
	if r.ID == "" {
		return Refund{}, fmt.Errorf("yookassa: refund payment %s: %w: answer has no refund id", paymentID, ErrUnavailable)
	}
	return r, nil
}

// do sends one request and decodes a 200 answer into out. Every failure comes
// back classified as ErrUnavailable or ErrInvalid.
func (c *Client) do(ctx context.Context, method, path, idempotenceKey string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%w: encode request: %w", ErrInvalid, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL()+path, body)
	if err != nil {
		return fmt.Errorf("%w: build request: %w", ErrInvalid, err)
	}
	req.SetBasicAuth(c.ShopID, c.SecretKey)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idempotenceKey != "" {
		req.Header.Set("Idempotence-Key", idempotenceKey)
	}

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s %s: %w: read answer: %w", method, path, ErrUnavailable, err)
	}
	if len(raw) > maxResponseBytes {
		return fmt.Errorf("%s %s: %w: answer larger than %d bytes", method, path, ErrUnavailable, maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %w", method, path, newAPIError(resp.StatusCode, raw))
	}
	// An unreadable 200 leaves the outcome unknown, which is what
	// ErrUnavailable tells the caller: ask again.
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: %w: decode answer: %w", method, path, ErrUnavailable, err)
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
	return &http.Client{Timeout: Timeout}
}

func validateCreatePayment(req CreatePaymentRequest, idempotenceKey string) error {
	var problems []error
	if err := validateAmount(req.Amount); err != nil {
		problems = append(problems, err)
	}
	switch {
	case req.PaymentMethodID != "" && req.SavePaymentMethod:
		problems = append(problems, errors.New("a charge of a saved payment method cannot save it again"))
	case req.PaymentMethodID == "" && req.ReturnURL == "":
		problems = append(problems, errors.New("return URL is required for a redirect confirmation"))
	}
	if req.Receipt != nil {
		problems = append(problems, receiptProblems(*req.Receipt, req.Amount)...)
	}
	if n := len([]rune(req.Description)); n > maxDescriptionLen {
		problems = append(problems, fmt.Errorf("description has %d characters, at most %d allowed", n, maxDescriptionLen))
	}
	if err := validateIdempotenceKey(idempotenceKey); err != nil {
		problems = append(problems, err)
	}
	return invalid(problems)
}

func validateRefund(paymentID string, amount Amount, idempotenceKey string) error {
	var problems []error
	if paymentID == "" {
		problems = append(problems, errors.New("payment id is required"))
	}
	if err := validateAmount(amount); err != nil {
		problems = append(problems, err)
	}
	if err := validateIdempotenceKey(idempotenceKey); err != nil {
		problems = append(problems, err)
	}
	return invalid(problems)
}

func validateAmount(a Amount) error {
	minor, err := a.Minor()
	if err != nil {
		return err
	}
	if minor <= 0 {
		return fmt.Errorf("amount %q must be positive", a.Value)
	}
	if len(a.Currency) != 3 || strings.ToUpper(a.Currency) != a.Currency {
		return fmt.Errorf("currency %q is not an ISO 4217 code like RUB", a.Currency)
	}
	return nil
}

// validateIdempotenceKey refuses an empty key because a request without one
// cannot be retried safely, which is the only reason to send it.
func validateIdempotenceKey(key string) error {
	if key == "" {
		return errors.New("idempotence key is required")
	}
	if len(key) > maxIdempotenceKeyLen {
		return fmt.Errorf("idempotence key has %d characters, at most %d allowed", len(key), maxIdempotenceKeyLen)
	}
	return nil
}

// invalid reports every problem at once, on one line, classified as ErrInvalid.
func invalid(problems []error) error {
	if len(problems) == 0 {
		return nil
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Error()
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(msgs, "; "))
}
