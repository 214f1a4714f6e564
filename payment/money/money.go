// Package money converts the decimal strings payment APIs use for amounts
// ("199.00") to and from integer minor units. No float ever touches money,
// and nothing is rounded away.
package money

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseDecimal converts a plain non-negative decimal such as "2.19" into
// minor units with the given number of decimals: ParseDecimal("2.19", 2) is
// 219. Fractional digits past decimals must be zeros ("2.190000" is fine).
func ParseDecimal(amount string, decimals int) (int64, error) {
	if decimals < 0 || decimals > 18 {
		return 0, fmt.Errorf("amount %q: %d decimals is out of range", amount, decimals)
	}
	whole, frac, hasDot := strings.Cut(amount, ".")
	if !IsDigits(whole) || (hasDot && !IsDigits(frac)) {
		return 0, fmt.Errorf("amount %q is not a plain decimal like \"2.19\"", amount)
	}
	if len(frac) > decimals {
		if strings.Trim(frac[decimals:], "0") != "" {
			return 0, fmt.Errorf("amount %q has more than %d decimal places", amount, decimals)
		}
		frac = frac[:decimals]
	}
	frac += strings.Repeat("0", decimals-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q is out of range", amount)
	}
	return n, nil
}

// IsDigits reports whether s is one or more ASCII digits; strconv alone
// would also let a sign through.
func IsDigits(s string) bool {
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
