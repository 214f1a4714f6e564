package postgres_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMigrationsNumberedInSequence: the migrations are 00001, 00002, ...
// with no number missing or repeated. goose refuses a migration numbered
// below one a database already applied, so a hole filled later would fail
// on every database that ran the higher number.
func TestMigrationsNumberedInSequence(t *testing.T) {
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		n++
		if want := fmt.Sprintf("%05d_", n); !strings.HasPrefix(e.Name(), want) {
			t.Errorf("migration %s: want number %s", e.Name(), strings.TrimSuffix(want, "_"))
		}
	}
	if n == 0 {
		t.Fatal("no migrations found")
	}
}
