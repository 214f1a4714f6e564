// Package pgtest gives tests a real, freshly migrated PostgreSQL database.
// Each test package gets a template database built once in TestMain; each
// test gets its own copy of it, dropped when the test ends.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wgbot/config"
	"wgbot/postgres"
)

// DefaultURL is the local server this machine kind runs (trust auth).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// templateEnv carries the template's name to re-executed test processes.
const templateEnv = "WGBOT_PGTEST_TEMPLATE"

var state struct {
	mu       sync.Mutex
	template string
	n        int
}

// AdminURL is TEST_DATABASE_URL or DefaultURL: a role that may create databases.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Main is called from a package's TestMain. It builds the migrated
// template, runs the tests and drops every database it created. If
// PostgreSQL cannot be reached the package fails with a message saying how
// to start it: tests never skip silently.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if name := os.Getenv(templateEnv); name != "" {
		// A child process re-executed by a test: the parent owns the databases.
		state.template = name
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	name := fmt.Sprintf("wgbot_test_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if err := createTemplate(ctx, name); err != nil {
		cancel()
		fmt.Fprintf(os.Stderr, "pgtest: %v\n"+
			"pgtest: the tests need a running PostgreSQL reachable at TEST_DATABASE_URL (now %s).\n"+
			"pgtest: start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n",
			err, config.RedactURL(AdminURL()))
		return 1
	}
	cancel()
	state.template = name
	os.Setenv(templateEnv, name)
	code := m.Run()
	dropAll(name)
	return code
}

func createTemplate(ctx context.Context, name string) error {
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", config.RedactURL(AdminURL()), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	pool, err := pgxpool.New(ctx, withDatabase(AdminURL(), name))
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		return err
	}
	return nil
}

// URL creates a fresh database for the test from the package's template and
// returns its connection URL; it is dropped when the test ends. Child
// processes started by the test can be handed the URL.
func URL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, true)
}

// EmptyURL is like URL but without migrations, for tests of migrating.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, false)
}

// New returns a pool on a fresh migrated database.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	state.mu.Lock()
	template := state.template
	state.n++
	name := fmt.Sprintf("%s_%d", template, state.n)
	state.mu.Unlock()
	if template == "" {
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain in this package")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v (start PostgreSQL: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)", config.RedactURL(AdminURL()), err)
	}
	defer admin.Close(ctx)
	stmt := "CREATE DATABASE " + name
	if migrated {
		stmt += " TEMPLATE " + template
	}
	// CREATE DATABASE ... TEMPLATE fails if another copy is being made from
	// the same template at that moment; serialize within the process.
	state.mu.Lock()
	_, err = admin.Exec(ctx, stmt)
	state.mu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: %s: %v", stmt, err)
	}
	t.Cleanup(func() { drop(name) })
	return withDatabase(AdminURL(), name)
}

func drop(name string) {
	asAdmin(func(ctx context.Context, admin *pgx.Conn) {
		admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
}

var ownName = regexp.MustCompile(`^wgbot_test_\d+_\d+(_\d+)?$`)

func dropAll(template string) {
	asAdmin(func(ctx context.Context, admin *pgx.Conn) {
		rows, err := admin.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", template+"%")
		if err != nil {
			return
		}
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			if ownName.MatchString(n) {
				admin.Exec(ctx, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)")
			}
		}
	})
}

// asAdmin runs fn on a connection to the admin database, within 30 s;
// clean-up is best effort, so a failed connect does nothing.
func asAdmin(fn func(context.Context, *pgx.Conn)) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return
	}
	defer admin.Close(ctx)
	fn(ctx, admin)
}

// withDatabase returns rawURL pointing at database name.
func withDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("pgtest: TEST_DATABASE_URL is not a URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}
