package cryptopay

import (
	"fmt"
	"strconv"
	"strings"

	"wgbot/payment/money"
)

// ParseAmount converts a Crypto Pay amount string such as "2.19" into minor
// units with the given number of decimals: ParseAmount("2.19", 2) is 219. It
// accepts only a plain non-negative decimal; fractional digits past decimals
// must be zeros ("2.190000" is fine), so nothing is ever rounded away.
// wgbot compares the minor units of what an invoice asked for with the
// order's price, never floats.
func ParseAmount(amount string, decimals int) (int64, error) {
	return money.ParseDecimal(amount, decimals)
}

// FormatAmount writes minor units as the decimal string the API takes:
// FormatAmount(219, 2) is "2.19", FormatAmount(5, 0) is "5". Trailing zeros
// are kept ("1.50"); Crypto Pay accepts them. minor must not be negative.
func FormatAmount(minor int64, decimals int) (string, error) {
	if minor < 0 {
		return "", fmt.Errorf("amount %d is negative", minor)
	}
	if decimals < 0 || decimals > 18 {
		return "", fmt.Errorf("%d decimals is out of range", decimals)
	}
	s := strconv.FormatInt(minor, 10)
	if decimals == 0 {
		return s, nil
	}
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	return s[:len(s)-decimals] + "." + s[len(s)-decimals:], nil
}

// checkAmount accepts a positive plain decimal of any size and precision,
// which is what the API takes and gives: the syntax ParseAmount accepts,
// without its range limit.
func checkAmount(amount string) error {
	whole, frac, hasDot := strings.Cut(amount, ".")
	if !money.IsDigits(whole) || (hasDot && !money.IsDigits(frac)) {
		return fmt.Errorf("amount %q is not a plain decimal like \"2.19\"", amount)
	}
	if strings.Trim(whole+frac, "0") == "" {
		return fmt.Errorf("amount %q must be positive", amount)
	}
	return nil
}
