package sandbox

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"wgbot/postgres/pgtest"
)

const (
	insertSandboxServer = `INSERT INTO servers (name, interface, endpoint, subnet, address, public_key, next_ip)
		VALUES ('sandbox', 'sandbox', 'vpn.sandbox.invalid:51820', '10.7.0.0/24', '10.7.0.1', 'k', '10.7.0.2')`
	insertWG0 = `INSERT INTO servers (name, interface, endpoint, subnet, address, public_key, next_ip)
		VALUES ('wg0', 'wg0', 'vpn.example.com:51820', '10.8.0.0/24', '10.8.0.1', 'k', '10.8.0.2')`
	insertUser    = `INSERT INTO users (telegram_id) VALUES (4242)`
	insertPayment = `INSERT INTO payments (provider, provider_payment_id, amount, currency, status, days) VALUES ('stars', 'c1', 100, 'XTR', 'credited', 30)`
)

func execSQL(t *testing.T, dbURL string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// comment is the database's comment, "" without one.
func comment(t *testing.T, dbURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var c *string
	if err := conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()`).Scan(&c); err != nil {
		t.Fatal(err)
	}
	if c == nil {
		return ""
	}
	return *c
}

func dbName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// CheckDatabase takes a database that is marked, or holds no wgbot data,
// and refuses one with a real setup's server row, users or payments,
// saying what it found and changing nothing.
func TestCheckDatabase(t *testing.T) {
	tests := []struct {
		name    string
		marked  bool
		rows    []string
		refused []string // what the refusal names; nil: accepted
	}{
		{name: "never migrated", rows: nil},
		{name: "migrated, empty"},
		{name: "only the sandbox's server row", rows: []string{insertSandboxServer}},
		{name: "production's", rows: []string{insertWG0, insertUser, insertPayment}, refused: []string{"not made by the sandbox", "server rows wg0", "1 users", "1 payments"}},
		{name: "users only", rows: []string{insertUser}, refused: []string{"not made by the sandbox", "1 users"}},
		{name: "payments only", rows: []string{insertPayment}, refused: []string{"1 payments"}},
		{name: "marked, with made-up users", marked: true, rows: []string{insertSandboxServer, insertUser, insertPayment}},
		{name: "marked, with a real server row", marked: true, rows: []string{insertWG0}, refused: []string{"marked as a sandbox's", "wg0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbURL := pgtest.URL(t)
			if tt.name == "never migrated" {
				dbURL = pgtest.EmptyURL(t)
			}
			execSQL(t, dbURL, tt.rows...)
			if tt.marked {
				execSQL(t, dbURL, "COMMENT ON DATABASE "+dbName(t, dbURL)+" IS "+quote(databaseMark))
			}
			before := comment(t, dbURL)
			err := CheckDatabase(context.Background(), dbURL)
			if tt.refused == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := comment(t, dbURL); got != databaseMark {
					t.Errorf("an accepted database is not marked as the sandbox's: %q", got)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range append(tt.refused, dbName(t, dbURL)) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the refusal does not say %q: %v", want, err)
				}
			}
			if got := comment(t, dbURL); got != before {
				t.Errorf("a refused database's comment changed from %q to %q", before, got)
			}
		})
	}
}

// OwnDatabase never returns the database it is given unless that one is
// a sandbox's: it makes, marks and returns <name>_sandbox on the same
// server, in URL and key=value form alike.
func TestOwnDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prod := pgtest.URL(t)
	execSQL(t, prod, insertWG0, insertUser)
	own := dbName(t, prod) + databaseSuffix
	t.Cleanup(func() { execSQL(t, pgtest.AdminURL(), "DROP DATABASE IF EXISTS "+own+" WITH (FORCE)") })

	got, err := OwnDatabase(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	if dbName(t, got) != own {
		t.Fatalf("OwnDatabase(%s) = %s, want database %s", prod, got, own)
	}
	if comment(t, got) != databaseMark || comment(t, prod) != "" {
		t.Errorf("marks: own %q, production %q", comment(t, got), comment(t, prod))
	}
	// Again, and through the database itself: the same one.
	if again, err := OwnDatabase(ctx, prod); err != nil || dbName(t, again) != own {
		t.Errorf("second call: %s, %v", again, err)
	}
	if again, err := OwnDatabase(ctx, got); err != nil || again != got {
		t.Errorf("given the sandbox's own database: %s, %v", again, err)
	}

	u, _ := url.Parse(prod)
	kv := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable", u.Hostname(), u.Port(), u.User.Username(), dbName(t, prod))
	got, err = OwnDatabase(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(got)
	if err != nil || cfg.Database != own {
		t.Errorf("key=value form: %q (%v)", got, err)
	}
}

// A role that may not create databases gets told what to do, and no
// database is made or marked.
func TestOwnDatabaseWithoutCreateDB(t *testing.T) {
	t.Parallel()
	prod := pgtest.URL(t)
	role := dbName(t, prod) + "_nocreate"
	execSQL(t, pgtest.AdminURL(), "CREATE ROLE "+role+" LOGIN NOCREATEDB")
	t.Cleanup(func() { execSQL(t, pgtest.AdminURL(), "DROP ROLE IF EXISTS "+role) })
	u, _ := url.Parse(prod)
	u.User = url.User(role)
	_, err := OwnDatabase(context.Background(), u.String())
	if err == nil || !strings.Contains(err.Error(), "CREATEDB") || !strings.Contains(err.Error(), "unset DATABASE_URL") {
		t.Fatalf("want advice to grant CREATEDB or unset DATABASE_URL, got %v", err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", dbName(t, prod)+databaseSuffix).Scan(&n); err != nil || n != 0 {
		t.Errorf("a database was made anyway: %d, %v", n, err)
	}
	if c := comment(t, prod); c != "" {
		t.Errorf("the given database was marked: %q", c)
	}
}
