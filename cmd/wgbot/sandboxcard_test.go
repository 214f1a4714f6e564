package main

import "testing"

// The sandbox's card names itself inside a sentence, declined in Russian
// ("через тестовую карту"), by the method the bot's payment link asks a
// checkout for; without it the embedded YooKassa's bank card would be
// named.
func TestSandboxCardTitleVia(t *testing.T) {
	var co any = sandboxCard{}
	v, ok := co.(interface{ TitleVia(lang string) string })
	if !ok {
		t.Fatal("sandboxCard has no TitleVia")
	}
	for lang, want := range map[string]string{"en": "the test card", "ru": "тестовую карту"} {
		if got := v.TitleVia(lang); got != want {
			t.Errorf("TitleVia(%s) = %q, want %q", lang, got, want)
		}
	}
}
