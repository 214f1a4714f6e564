package yookassa

import (
	"strconv"
	"strings"

	"wgbot/payment/money"
)

// minorDigits is the number of decimal places in YooKassa amounts. The API
// writes every currency it accepts with two ("100.00"), so one constant
// serves RUB and the rest.
const minorDigits = 2

// Amount is a sum of money exactly as the API writes it. Value stays a decimal
// string end to end so that no float ever touches money.
type Amount struct {
	Value    string `json:"value"`    // e.g. "100.00"
	Currency string `json:"currency"` // ISO 4217, e.g. "RUB"
}

// AmountFromMinor builds an Amount from minor units: 10000 kopecks → "100.00" RUB.
func AmountFromMinor(minor int64, currency string) Amount {
	return Amount{Value: FormatMinor(minor), Currency: currency}
}

// Minor returns the amount in minor units (kopecks for RUB).
func (a Amount) Minor() (int64, error) {
	return ParseMinor(a.Value)
}

// ParseMinor converts an amount value such as "100.00" into minor units
// (10000). It accepts only a plain non-negative decimal: digits, optionally a
// dot and more digits. Fractional digits past the second must be zeros, so a
// value that would need rounding is an error rather than a silent loss.
func ParseMinor(value string) (int64, error) {
	return money.ParseDecimal(value, minorDigits)
}

// FormatMinor writes minor units the way the API expects: 10000 → "100.00",
// 5 → "0.05". A negative input keeps its sign; YooKassa accepts no negative
// amount, so it is the caller's bug that the API will then report.
func FormatMinor(minor int64) string {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign, u = "-", uint64(-(minor+1))+1 // no overflow at math.MinInt64
	}
	s := strconv.FormatUint(u, 10)
	if len(s) <= minorDigits {
		s = strings.Repeat("0", minorDigits-len(s)+1) + s
	}
	return sign + s[:len(s)-minorDigits] + "." + s[len(s)-minorDigits:]
}
