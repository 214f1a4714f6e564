package yookassatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"wgbot/payment/yookassa"
)

// The receipt rules below are YooKassa's own (API reference, "receipt" of
// a payment, and the 54-FZ parameter values), written here apart from the
// client's validation on purpose: a fault the client stops missing would
// otherwise pass the emulator as well.
const (
	maxReceiptItems       = 100 // items of one 54-FZ receipt
	maxItemDescriptionLen = 128
	maxQuantityDecimals   = 3
	maxValueDecimals      = 2
)

var (
	// e164 is a phone in ITU-T E.164 without the plus: the country code
	// and the number, at most 15 digits (79000000000).
	e164 = regexp.MustCompile(`^[1-9][0-9]{6,14}$`)
	// plainEmail is what YooKassa takes for an email: one @, something
	// on each side, a dot in the domain, no spaces.
	plainEmail = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	// decimalText is a non-negative decimal as YooKassa writes it: a dot,
	// no exponent, no thousands separator.
	decimalText = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// taxSystemCodes are tax_system_code's values (1 general ... 6 patent).
func validTaxSystem(c int64) bool { return c >= 1 && c <= 6 }

// vatCodes are vat_code's values: 1-6, and 7-12 for the rates of 2025
// (5 %, 7 %, 5/105, 7/107) and 2026 (22 %, 22/122).
func validVAT(c int64) bool { return c >= 1 && c <= 12 }

var itemSubjects = map[string]bool{
	"commodity": true, "excise": true, "job": true, "service": true, "gambling_bet": true, "gambling_prize": true,
	"lottery": true, "lottery_prize": true, "intellectual_activity": true, "payment": true, "agent_commission": true,
	"composite": true, "another": true, "property_right": true, "non_operating_gain": true, "insurance_premium": true,
	"sales_tax": true, "resort_fee": true, "fine": true, "tax": true, "lien": true, "cost": true, "pension_insurance": true,
	"medical_insurance": true, "social_insurance": true, "casino": true, "agent_payment": true, "casino_chips": true,
	"excisable_goods_without_marking_code": true, "excisable_goods_with_marking_code": true,
	"goods_without_marking_code": true, "goods_with_marking_code": true,
}

var itemModes = map[string]bool{
	"full_prepayment": true, "partial_prepayment": true, "advance": true, "full_payment": true,
	"partial_payment": true, "credit": true, "credit_payment": true,
}

// wireReceipt is a receipt as it arrives, typed as YooKassa documents it
// (vat_code and tax_system_code are numbers; quantity a number, or a
// string as older clients send it).
type wireReceipt struct {
	Customer *struct {
		FullName string `json:"full_name"`
		INN      string `json:"inn"`
		Email    string `json:"email"`
		Phone    string `json:"phone"`
	} `json:"customer"`
	Items         []wireItem      `json:"items"`
	TaxSystemCode json.RawMessage `json:"tax_system_code"`
}

type wireItem struct {
	Description *string         `json:"description"`
	Quantity    json.RawMessage `json:"quantity"`
	Amount      *struct {
		Value    string `json:"value"`
		Currency string `json:"currency"`
	} `json:"amount"`
	VATCode        json.RawMessage `json:"vat_code"`
	PaymentSubject string          `json:"payment_subject"`
	PaymentMode    string          `json:"payment_mode"`
}

// checkReceipt refuses a missing receipt when the shop needs one, and a
// receipt YooKassa would refuse, with its error: 400 invalid_request,
// parameter "receipt", the description naming the field. A good receipt
// comes back decoded, to be kept with the payment.
func (s *Server) checkReceipt(raw json.RawMessage, payment yookassa.Amount) (*yookassa.Receipt, apiError, bool) {
	bad := func(format string, args ...any) (*yookassa.Receipt, apiError, bool) {
		return nil, apiError{http.StatusBadRequest, "invalid_request", "Receipt is missing or illegal: " + fmt.Sprintf(format, args...), "receipt"}, true
	}
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if s.RequireReceipts {
			return bad("a receipt is required for this shop")
		}
		return nil, apiError{}, false
	}
	var r wireReceipt
	if err := decodeStrict(raw, &r); err != nil {
		return bad("%v", err)
	}
	if problem := receiptProblem(r, payment); problem != "" {
		return bad("%s", problem)
	}
	var kept yookassa.Receipt
	if err := json.Unmarshal(raw, &kept); err != nil {
		// Valid by YooKassa's rules, yet not what the client's type holds
		// (a quantity as a JSON number): kept as far as it decodes.
		kept = yookassa.Receipt{}
	}
	return &kept, apiError{}, false
}

// receiptProblem is the first rule r breaks, "" if none.
func receiptProblem(r wireReceipt, payment yookassa.Amount) string {
	if r.Customer == nil || (r.Customer.Email == "" && r.Customer.Phone == "") {
		return "receipt.customer.email or receipt.customer.phone is required"
	}
	if e := r.Customer.Email; e != "" && !plainEmail.MatchString(e) {
		return fmt.Sprintf("receipt.customer.email %q is not an email address", e)
	}
	if p := r.Customer.Phone; p != "" && !e164.MatchString(p) {
		return fmt.Sprintf("receipt.customer.phone %q is not in ITU-T E.164 format", p)
	}
	if r.TaxSystemCode != nil {
		if c, ok := integer(r.TaxSystemCode); !ok || !validTaxSystem(c) {
			return fmt.Sprintf("receipt.tax_system_code %s is not 1-6", r.TaxSystemCode)
		}
	}
	if len(r.Items) == 0 || len(r.Items) > maxReceiptItems {
		return fmt.Sprintf("receipt.items has %d items, 1 to %d allowed", len(r.Items), maxReceiptItems)
	}
	total := new(big.Rat)
	for i, it := range r.Items {
		sum, problem := itemProblem(fmt.Sprintf("receipt.items[%d]", i), it, payment.Currency)
		if problem != "" {
			return problem
		}
		total.Add(total, sum)
	}
	want, ok := new(big.Rat).SetString(payment.Value)
	if !ok || total.Cmp(want) != 0 {
		return fmt.Sprintf("the items add up to %s %s, the payment is %s %s", total.FloatString(maxValueDecimals), payment.Currency, payment.Value, payment.Currency)
	}
	return ""
}

// itemProblem checks one item and returns its sum (price times quantity).
func itemProblem(at string, it wireItem, currency string) (*big.Rat, string) {
	if it.Description == nil {
		return nil, at + ".description is required"
	}
	if n := len([]rune(*it.Description)); n == 0 || n > maxItemDescriptionLen {
		return nil, fmt.Sprintf("%s.description has %d characters, 1 to %d allowed", at, n, maxItemDescriptionLen)
	}
	q, ok := quantity(it.Quantity)
	if !ok {
		return nil, fmt.Sprintf("%s.quantity %s must be a positive number with at most %d decimals", at, it.Quantity, maxQuantityDecimals)
	}
	if it.Amount == nil {
		return nil, at + ".amount is required"
	}
	price, ok := decimal(it.Amount.Value, maxValueDecimals)
	if !ok {
		return nil, fmt.Sprintf("%s.amount.value %q must be a decimal with at most %d decimals", at, it.Amount.Value, maxValueDecimals)
	}
	if it.Amount.Currency != currency {
		return nil, fmt.Sprintf("%s.amount.currency %q differs from the payment's %q", at, it.Amount.Currency, currency)
	}
	if it.VATCode == nil {
		return nil, at + ".vat_code is required"
	}
	if c, ok := integer(it.VATCode); !ok || !validVAT(c) {
		return nil, fmt.Sprintf("%s.vat_code %s is not 1-12", at, it.VATCode)
	}
	if it.PaymentSubject != "" && !itemSubjects[it.PaymentSubject] {
		return nil, fmt.Sprintf("%s.payment_subject %q is not a documented value", at, it.PaymentSubject)
	}
	if it.PaymentMode != "" && !itemModes[it.PaymentMode] {
		return nil, fmt.Sprintf("%s.payment_mode %q is not a documented value", at, it.PaymentMode)
	}
	return new(big.Rat).Mul(price, q), ""
}

// integer reads a JSON integer; a string holding one is not.
func integer(raw json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	return n, err == nil
}

// quantity reads an item's quantity: a JSON number, or a string holding
// one; positive, at most three decimals.
func quantity(raw json.RawMessage) (*big.Rat, bool) {
	text := strings.TrimSpace(string(raw))
	if unquoted, err := jsonString(raw); err == nil {
		text = unquoted
	}
	q, ok := decimal(text, maxQuantityDecimals)
	return q, ok && q.Sign() > 0
}

func jsonString(raw json.RawMessage) (string, error) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// decimal parses a non-negative decimal with at most places decimals.
func decimal(text string, places int) (*big.Rat, bool) {
	if !decimalText.MatchString(text) {
		return nil, false
	}
	if _, frac, ok := strings.Cut(text, "."); ok && len(frac) > places {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(text)
	return r, ok
}
