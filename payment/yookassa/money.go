package yookassa

import (
	"fmt"
	"strconv"
	"strings"
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
	whole, frac, hasDot := strings.Cut(value, ".")
	if !isDigits(whole) || (hasDot && !isDigits(frac)) {
		return 0, fmt.Errorf("amount %q is not a plain decimal like \"100.00\"", value)
	}
	if len(frac) > minorDigits {
		if strings.Trim(frac[minorDigits:], "0") != "" {
			return 0, fmt.Errorf("amount %q has more than %d decimal places", value, minorDigits)
		}
		frac = frac[:minorDigits]
	}
	frac += strings.Repeat("0", minorDigits-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q is out of range", value)
	}
	return n, nil
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

// isDigits reports whether s is one or more ASCII digits; strconv alone would
// also let a sign through.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
