package cryptopay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// SignatureHeader is the header Crypto Pay puts the webhook signature in.
const SignatureHeader = "Crypto-Pay-Api-Signature"

// UpdateInvoicePaid is the only update type Crypto Pay sends.
const UpdateInvoicePaid = "invoice_paid"

// ErrUnsupportedUpdate marks a well-formed, correctly signed update of a type
// wgbot does not handle. The webhook should answer 200 to it so that Crypto
// Pay stops redelivering.
var ErrUnsupportedUpdate = errors.New("unsupported crypto pay update type")

// VerifySignature reports whether signatureHex is Crypto Pay's signature of
// body: hex(HMAC-SHA256(key = SHA256(token), message = body)). Call it on the
// raw bytes as received, before any parsing: a body re-encoded after parsing
// no longer matches. The comparison is constant-time on the decoded bytes.
// Bad hex, a signature of the wrong length and an empty token all fail; an
// empty token would make the key a public constant.
func VerifySignature(token string, body []byte, signatureHex string) bool {
	if token == "" {
		return false
	}
	got, err := hex.DecodeString(signatureHex)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	secret := sha256.Sum256([]byte(token))
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Update is a parsed webhook update: {"update_id":..,"update_type":"invoice_paid",
// "request_date":..,"payload":{invoice}}.
type Update struct {
	UpdateID    int64
	UpdateType  string
	RequestDate time.Time
	Invoice     Invoice // the update's payload
}

// ParseUpdate reads a webhook body whose signature has already been verified.
// It is strict about what wgbot relies on: one JSON object and nothing after
// it, a positive update_id, a request_date, a known update type, and an
// invoice with an id, an amount, a currency and status "paid".
// Unknown fields are ignored, because Crypto Pay adds fields over time. An
// unknown update type yields an error matching ErrUnsupportedUpdate; any
// other error means the body should be refused.
func ParseUpdate(body []byte) (Update, error) {
	var wire struct {
		UpdateID    int64           `json:"update_id"`
		UpdateType  string          `json:"update_type"`
		RequestDate time.Time       `json:"request_date"`
		Payload     json.RawMessage `json:"payload"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&wire); err != nil {
		return Update{}, fmt.Errorf("crypto pay update: malformed JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Update{}, errors.New("crypto pay update: malformed JSON: data after the top-level object")
	}
	if wire.UpdateID <= 0 {
		return Update{}, fmt.Errorf("crypto pay update: update_id %d is not positive", wire.UpdateID)
	}
	if wire.RequestDate.IsZero() {
		return Update{}, fmt.Errorf("crypto pay update %d: no request_date", wire.UpdateID)
	}
	if wire.UpdateType != UpdateInvoicePaid {
		return Update{}, fmt.Errorf("crypto pay update %d: type %q: %w", wire.UpdateID, wire.UpdateType, ErrUnsupportedUpdate)
	}
	if len(wire.Payload) == 0 || bytes.Equal(wire.Payload, []byte("null")) {
		return Update{}, fmt.Errorf("crypto pay update %d: no payload", wire.UpdateID)
	}
	var inv Invoice
	if err := json.Unmarshal(wire.Payload, &inv); err != nil {
		return Update{}, fmt.Errorf("crypto pay update %d: invoice: %w", wire.UpdateID, err)
	}
	if err := checkPaidInvoice(inv); err != nil {
		return Update{}, fmt.Errorf("crypto pay update %d: %w", wire.UpdateID, err)
	}
	return Update{UpdateID: wire.UpdateID, UpdateType: wire.UpdateType, RequestDate: wire.RequestDate, Invoice: inv}, nil
}

func checkPaidInvoice(inv Invoice) error {
	if inv.InvoiceID <= 0 {
		return fmt.Errorf("invoice_id %d is not positive", inv.InvoiceID)
	}
	if inv.Status != StatusPaid {
		return fmt.Errorf("invoice %d has status %q, want %q", inv.InvoiceID, inv.Status, StatusPaid)
	}
	if err := checkAmount(inv.Amount); err != nil {
		return fmt.Errorf("invoice %d: %w", inv.InvoiceID, err)
	}
	switch inv.CurrencyType {
	case CurrencyFiat:
		if inv.Fiat == "" {
			return fmt.Errorf("invoice %d is a fiat invoice without fiat", inv.InvoiceID)
		}
	case CurrencyCrypto, "":
		// Invoices from before API 1.2 have no currency_type: they are crypto.
		if inv.Asset == "" {
			return fmt.Errorf("invoice %d is a crypto invoice without asset", inv.InvoiceID)
		}
	default:
		return fmt.Errorf("invoice %d has currency_type %q", inv.InvoiceID, inv.CurrencyType)
	}
	return nil
}
