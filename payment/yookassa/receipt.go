package yookassa

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
)

// Receipt is the fiscal receipt (54-FZ) YooKassa sends to the tax service
// and to the customer on the shop's behalf. A shop whose online cash
// register is connected to YooKassa must send one with every payment.
type Receipt struct {
	Customer      Customer      `json:"customer"`
	Items         []ReceiptItem `json:"items"`
	TaxSystemCode int           `json:"tax_system_code,omitempty"` // 1-6; only for shops with several tax systems
}

// Customer is where the receipt goes: an email or a phone (digits only,
// with the country code, e.g. 79001234567). At least one is required.
type Customer struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// ReceiptItem is one line of the receipt.
type ReceiptItem struct {
	Description    string `json:"description"` // at most 128 characters
	Quantity       string `json:"quantity"`    // a decimal such as "1" or "1.000"
	Amount         Amount `json:"amount"`      // the price of one unit
	VATCode        int    `json:"vat_code"`    // 1-12 (see ValidVATCode)
	PaymentSubject string `json:"payment_subject,omitempty"`
	PaymentMode    string `json:"payment_mode,omitempty"`
}

// Receipt item values wgbot uses: access to a VPN is a service paid for
// in full before it is given.
const (
	SubjectService = "service"
	ModeFullPay    = "full_payment"
)

const maxReceiptItems = 100

// paymentSubjects and paymentModes are the values YooKassa documents.
var paymentSubjects = map[string]bool{
	"commodity": true, "excise": true, "job": true, "service": true, "gambling_bet": true, "gambling_prize": true,
	"lottery": true, "lottery_prize": true, "intellectual_activity": true, "payment": true, "agent_commission": true,
	"property_right": true, "non_operating_gain": true, "insurance_premium": true, "sales_tax": true, "resort_fee": true,
	"composite": true, "another": true, "fine": true, "tax": true, "lien": true, "cost": true, "pension_insurance": true,
	"medical_insurance": true, "social_insurance": true, "casino_chips": true, "agent_payment": true,
	"excisable_goods_without_marking_code": true, "excisable_goods_with_marking_code": true,
	"goods_without_marking_code": true, "goods_with_marking_code": true, "casino": true,
}

var paymentModes = map[string]bool{
	"full_prepayment": true, "partial_prepayment": true, "advance": true, "full_payment": true,
	"partial_payment": true, "credit": true, "credit_payment": true,
}

// ValidVATCode: 1 no VAT, 2 0 %, 3 10 %, 4 20 %, 5 10/110, 6 20/120, and
// the codes added for the 2025 rates: 7 5 %, 8 7 %, 9 5/105, 10 7/107,
// 11 22 %, 12 22/122.
func ValidVATCode(c int) bool { return c >= 1 && c <= 12 }

// ValidTaxSystemCode: 1 general, 2 simplified (income), 3 simplified
// (income minus expenses), 4 imputed income, 5 agricultural, 6 patent.
func ValidTaxSystemCode(c int) bool { return c >= 1 && c <= 6 }

var phoneDigits = regexp.MustCompile(`^[0-9]{11,15}$`)

// ValidateReceipt checks a receipt the way YooKassa does, and that its
// items add up to the payment's amount exactly.
func ValidateReceipt(r Receipt, payment Amount) error {
	return invalid(receiptProblems(r, payment))
}

func receiptProblems(r Receipt, payment Amount) []error {
	var problems []error
	if r.Customer.Email == "" && r.Customer.Phone == "" {
		problems = append(problems, errors.New("receipt.customer needs an email or a phone"))
	}
	if r.Customer.Phone != "" && !phoneDigits.MatchString(r.Customer.Phone) {
		problems = append(problems, fmt.Errorf("receipt.customer.phone %q must be 11 to 15 digits with the country code", r.Customer.Phone))
	}
	if r.Customer.Email != "" {
		if a, err := mail.ParseAddress(r.Customer.Email); err != nil || a.Address != r.Customer.Email {
			problems = append(problems, fmt.Errorf("receipt.customer.email %q is not an email address", r.Customer.Email))
		}
	}
	if r.TaxSystemCode != 0 && !ValidTaxSystemCode(r.TaxSystemCode) {
		problems = append(problems, fmt.Errorf("receipt.tax_system_code %d is not 1-6", r.TaxSystemCode))
	}
	if len(r.Items) == 0 || len(r.Items) > maxReceiptItems {
		problems = append(problems, fmt.Errorf("receipt has %d items, 1 to %d allowed", len(r.Items), maxReceiptItems))
	}
	var total int64
	for i, it := range r.Items {
		p, sum := itemProblems(i, it, payment.Currency)
		problems = append(problems, p...)
		total += sum
	}
	if want, err := payment.Minor(); err == nil && len(problems) == 0 && total != want {
		problems = append(problems, fmt.Errorf("receipt items add up to %s, the payment is %s",
			AmountFromMinor(total, payment.Currency).Value, payment.Value))
	}
	return problems
}

// itemProblems checks one item and returns its sum in minor units. The
// quantity must be whole here: wgbot sells whole periods, and a fractional
// quantity times a price could not be summed exactly.
func itemProblems(i int, it ReceiptItem, currency string) ([]error, int64) {
	var problems []error
	at := fmt.Sprintf("receipt.items[%d]", i)
	if n := len([]rune(it.Description)); n == 0 || n > maxDescriptionLen {
		problems = append(problems, fmt.Errorf("%s.description has %d characters, 1 to %d allowed", at, n, maxDescriptionLen))
	}
	q, err := ParseMinor(it.Quantity)
	if err != nil || q <= 0 || q%100 != 0 {
		problems = append(problems, fmt.Errorf("%s.quantity %q must be a positive whole number", at, it.Quantity))
	}
	price, err := it.Amount.Minor()
	if err != nil || price <= 0 {
		problems = append(problems, fmt.Errorf("%s.amount %q must be positive", at, it.Amount.Value))
	}
	if it.Amount.Currency != currency {
		problems = append(problems, fmt.Errorf("%s.amount.currency %q differs from the payment's %q", at, it.Amount.Currency, currency))
	}
	if !ValidVATCode(it.VATCode) {
		problems = append(problems, fmt.Errorf("%s.vat_code %d is not 1-12", at, it.VATCode))
	}
	if it.PaymentSubject != "" && !paymentSubjects[it.PaymentSubject] {
		problems = append(problems, fmt.Errorf("%s.payment_subject %q is not one YooKassa knows", at, it.PaymentSubject))
	}
	if it.PaymentMode != "" && !paymentModes[it.PaymentMode] {
		problems = append(problems, fmt.Errorf("%s.payment_mode %q is not one YooKassa knows", at, it.PaymentMode))
	}
	return problems, price * (q / 100)
}
