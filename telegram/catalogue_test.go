package telegram

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// declaredKeys parses the package's non-test source for the constants of
// type msg, and counts every identifier used outside their declarations
// and the catalogue's entries.
func declaredKeys(t *testing.T) (keys map[string]msg, uses map[string]int) {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	keys, uses = map[string]msg{}, map[string]int{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "msg" {
					for i, nm := range n.Names {
						lit := n.Values[i].(*ast.BasicLit)
						keys[nm.Name] = msg(strings.Trim(lit.Value, `"`))
					}
					return false
				}
			case *ast.KeyValueExpr:
				// A catalogue entry defines a text; it does not use it.
				if _, ok := n.Key.(*ast.Ident); ok && name == "i18n.go" {
					return false
				}
			case *ast.Ident:
				uses[n.Name]++
			}
			return true
		})
	}
	return keys, uses
}

// TestCatalogueComplete: every key has a text in every language, every
// language has only declared keys, and both languages take the same
// format arguments in the same order.
func TestCatalogueComplete(t *testing.T) {
	t.Parallel()
	keys, _ := declaredKeys(t)
	if len(keys) < 50 {
		t.Fatalf("found only %d keys; is the parser looking at the right files?", len(keys))
	}
	cat := catalogue()
	if got := slices.Sorted(maps.Keys(cat)); !slices.Equal(got, []string{langEN, langRU}) || !slices.Equal(languages(), []string{langEN, langRU}) {
		t.Fatalf("catalogue languages %v", got)
	}
	declared := map[msg]bool{}
	for name, key := range keys {
		declared[key] = true
		for _, lang := range languages() {
			if strings.TrimSpace(cat[lang][key]) == "" {
				t.Errorf("%s (%q) has no %s text", name, key, lang)
			}
		}
		if verbs(cat[langEN][key]) != verbs(cat[langRU][key]) {
			t.Errorf("%s: en takes %q, ru takes %q", name, verbs(cat[langEN][key]), verbs(cat[langRU][key]))
		}
	}
	for _, lang := range languages() {
		for key := range cat[lang] {
			if !declared[key] {
				t.Errorf("%s has a text for undeclared key %q", lang, key)
			}
		}
	}
}

// TestCatalogueUsed: every key is used outside the catalogue itself, so
// no text is dead.
func TestCatalogueUsed(t *testing.T) {
	t.Parallel()
	keys, uses := declaredKeys(t)
	for name := range keys {
		if uses[name] == 0 {
			t.Errorf("%s is never used", name)
		}
	}
}

var verbPattern = regexp.MustCompile(`%[-+# 0]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]`)

// verbs lists a text's fmt verbs in order.
func verbs(s string) string { return strings.Join(verbPattern.FindAllString(s, -1), " ") }

// TestPlural: Russian has three forms, English two.
func TestPlural(t *testing.T) {
	t.Parallel()
	tx := texts(catalogue())
	for _, tc := range []struct {
		lang string
		n    int
		want string
	}{
		{langEN, 1, "1 day"}, {langEN, 2, "2 days"}, {langEN, 21, "21 days"}, {langEN, 0, "0 days"},
		{langRU, 1, "1 день"}, {langRU, 2, "2 дня"}, {langRU, 4, "4 дня"}, {langRU, 5, "5 дней"},
		{langRU, 11, "11 дней"}, {langRU, 12, "12 дней"}, {langRU, 14, "14 дней"}, {langRU, 21, "21 день"},
		{langRU, 22, "22 дня"}, {langRU, 30, "30 дней"}, {langRU, 111, "111 дней"}, {langRU, 365, "365 дней"},
	} {
		if got := tx.days(tc.lang, tc.n); got != tc.want {
			t.Errorf("days(%s, %d) = %q, want %q", tc.lang, tc.n, got, tc.want)
		}
	}
	if got := tx.upToDevices(langRU, 1); got != "до 1 устройства" {
		t.Errorf("upToDevices(ru, 1) = %q", got)
	}
	if got := tx.upToDevices(langRU, 3); got != "до 3 устройств" {
		t.Errorf("upToDevices(ru, 3) = %q", got)
	}
}

func TestNormalizeLang(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]string{"ru": langRU, "ru-RU": langRU, "RU": langRU, "en": langEN, "en-US": langEN, "": langEN, "uk": langEN, "de": langEN} {
		if got := normalizeLang(code); got != want {
			t.Errorf("normalizeLang(%q) = %q, want %q", code, got, want)
		}
	}
}

// TestCountsUsePlural (issue 17, item 4): a number in a sentence must take
// the plural form the language wants ("1 день", "2 дня", "5 дней"), so
// every %d in either language is one of: a plural form's own number, a
// labelled figure ("Users: %d", "Devices: %d of %d"), or a Telegram id
// ("id %d"). A count any other way ("%d days", "%d получателей") fails:
// it goes through days or a plural form of its own.
func TestCountsUsePlural(t *testing.T) {
	t.Parallel()
	plural := map[msg]bool{mDaysOne: true, mDaysFew: true, mDaysMany: true,
		mUpToDevicesOne: true, mUpToDevicesFew: true, mUpToDevicesMany: true,
		mAgoMinutesOne: true, mAgoMinutesFew: true, mAgoMinutesMany: true, mAgoHoursOne: true, mAgoHoursFew: true,
		mAgoHoursMany: true, mAgoDaysOne: true, mAgoDaysFew: true, mAgoDaysMany: true,
		mFriendsOne: true, mFriendsFew: true, mFriendsMany: true}
	labelled := regexp.MustCompile(`(: |id |%d of |%d из )$`)
	for _, lang := range languages() {
		for key, s := range catalogue()[lang] {
			if plural[key] {
				continue
			}
			for _, at := range regexp.MustCompile(`%d`).FindAllStringIndex(s, -1) {
				if !labelled.MatchString(s[:at[0]]) {
					t.Errorf("%s %s: %q has a count outside the plural forms at %q", lang, key, s, s[max(0, at[0]-20):at[1]])
				}
			}
		}
	}
}
