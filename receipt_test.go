package wgbot

import (
	"errors"
	"testing"
)

func TestNormalizeReceiptContact(t *testing.T) {
	for in, want := range map[string]string{
		"a@example.com":      "a@example.com",
		" b.c@mail.ru ":      "b.c@mail.ru",
		"+7 (900) 123-45-67": "79001234567",
		"8 900 123 45 67":    "79001234567",
		"447911123456":       "447911123456",
	} {
		if got, err := NormalizeReceiptContact(in); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a@", "a@b", "Vasya <a@example.com>", "123", "+7 900 12", "79001234567x", "PROMO2026"} {
		if got, err := NormalizeReceiptContact(in); !errors.Is(err, ErrReceiptContact) {
			t.Errorf("%q: got %q, %v; want ErrReceiptContact", in, got, err)
		}
	}
	if LooksLikeReceiptContact("SUMMER25") || !LooksLikeReceiptContact("a@b") || !LooksLikeReceiptContact("8 900 123 45 67") {
		t.Error("LooksLikeReceiptContact")
	}
}
