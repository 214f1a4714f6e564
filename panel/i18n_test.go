package panel

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// Every text exists in both languages with the same placeholders, and
// every key the templates name is in the catalogue.
func TestCatalogue(t *testing.T) {
	verbs := regexp.MustCompile(`%[a-z]`)
	for key, en := range texts["en"] {
		ru, ok := texts["ru"][key]
		if !ok {
			t.Errorf("%s: no Russian text", key)
			continue
		}
		if strings.Join(verbs.FindAllString(en, -1), "") != strings.Join(verbs.FindAllString(ru, -1), "") {
			t.Errorf("%s: placeholders differ: %q, %q", key, en, ru)
		}
	}
	for key := range texts["ru"] {
		if _, ok := texts["en"][key]; !ok {
			t.Errorf("%s: no English text", key)
		}
	}
	used := regexp.MustCompile(`\bt \$?[.a-zA-Z]* "([a-z_0-9]+)"`)
	names, _ := fs.Glob(files, "templates/*.html")
	total := 0
	for _, n := range names {
		b, _ := fs.ReadFile(files, n)
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			total++
			if _, ok := texts["en"][m[1]]; !ok {
				t.Errorf("%s uses %q, which the catalogue lacks", n, m[1])
			}
		}
	}
	if total < 50 {
		t.Fatalf("found only %d texts in the templates: the pattern is wrong", total)
	}
	// Keys chosen at run time.
	for _, key := range []string{"today", "days7", "days30", "filter_any", "filter_active", "filter_expired", "filter_trial",
		"filter_never", "filter_banned", "active", "draining", "done_revoked", "done_banned", "done_unbanned", "done_sent"} {
		if _, ok := texts["en"][key]; !ok {
			t.Errorf("%q is missing", key)
		}
	}
}
