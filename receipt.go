package wgbot

import (
	"net/mail"
	"regexp"
	"strings"
)

// Fiscal receipts (54-FZ): a shop in Russia sends each customer a receipt
// by email or text message, so a provider that registers receipts needs one
// of the two. The user gives it once; it is stored on the user.

var (
	// ErrReceiptContact: what the user sent is neither an email nor a phone.
	ErrReceiptContact = &Error{Code: EInvalid, Reason: "receipt_contact", Message: "a receipt contact is an email address or a phone number with its country code"}
	// ErrReceiptContactNeeded: the checkout needs the user's contact first.
	ErrReceiptContactNeeded = &Error{Code: EInvalid, Reason: "receipt_contact_needed", Message: "the receipt needs the user's email or phone"}
)

var receiptPhone = regexp.MustCompile(`^[0-9]{11,15}$`)

// NormalizeReceiptContact turns what a user typed into the stored form: an
// email as is, or a phone reduced to its digits with the country code, a
// leading 8 (the Russian habit) becoming 7. Anything else is
// ErrReceiptContact.
func NormalizeReceiptContact(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "@") {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Address != s || len(s) > 254 || !strings.Contains(s[strings.LastIndexByte(s, '@'):], ".") {
			return "", ErrReceiptContact
		}
		return s, nil
	}
	digits := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r
		case r == '+' || r == ' ' || r == '-' || r == '(' || r == ')':
			return -1
		}
		return 'x'
	}, s)
	if len(digits) == 11 && digits[0] == '8' {
		digits = "7" + digits[1:]
	}
	if !receiptPhone.MatchString(digits) {
		return "", ErrReceiptContact
	}
	return digits, nil
}

// LooksLikeReceiptContact says whether a plain message is meant as a
// contact (an email, or a phone of 11 or more digits), so the bot reads it
// as one rather than as a promo code.
func LooksLikeReceiptContact(s string) bool {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "@") || strings.HasPrefix(s, "+") {
		return true
	}
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n >= 11
}
