package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"wgbot/config"
)

// databaseMark is the comment on a database the sandbox made for itself.
// The sandbox uses no other database: it fills its own with made-up users
// and payments and runs every job (expiry, reminders, payment notices)
// against the emulators, so a production database must never be one.
const databaseMark = "wgbot sandbox: made by `wgbot sandbox` for made-up users and payments, never production's"

// ServerName is the name of the sandbox's server row; any other server row
// belongs to a real setup.
const ServerName = "sandbox"

// databaseSuffix names the database the sandbox makes for itself next to
// the one DATABASE_URL names.
const databaseSuffix = "_sandbox"

// OwnDatabase returns the URL of the sandbox's own database on the server
// serverURL points at: the database serverURL names if it is already a
// sandbox's, else that name with "_sandbox" appended, created and marked on
// first use. The database serverURL names is only read, never used: that
// is where production's data would be. An existing database of that name
// that is not a sandbox's is refused, with the reason.
func OwnDatabase(ctx context.Context, serverURL string) (string, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", config.RedactURL(serverURL), err)
	}
	defer conn.Close(ctx)
	given := conn.Config().Database
	if marked, err := isMarked(ctx, conn, given); err != nil {
		return "", err
	} else if marked {
		return serverURL, CheckDatabase(ctx, serverURL)
	}
	own := given + databaseSuffix
	if len(own) > 63 {
		return "", fmt.Errorf("DATABASE_URL names database %q; the sandbox's own, %q, would be longer than PostgreSQL allows", given, own)
	}
	if err := createMarked(ctx, conn, own); err != nil {
		return "", err
	}
	ownURL, err := withDatabase(serverURL, own)
	if err != nil {
		return "", err
	}
	return ownURL, CheckDatabase(ctx, ownURL)
}

// createMarked creates the database name and marks it as the sandbox's,
// unless it exists (CheckDatabase then decides whether it may be used).
func createMarked(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P04":
		return nil // another sandbox made it a moment ago
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return fmt.Errorf("the sandbox keeps its data in a database of its own, %s, and role %s may not create it: "+
			"grant it CREATEDB, create the database for it (CREATE DATABASE %s OWNER %s), or unset DATABASE_URL to let the sandbox run its own PostgreSQL",
			name, conn.Config().User, name, conn.Config().User)
	case err != nil:
		return fmt.Errorf("create the sandbox's database %s: %w", name, err)
	}
	return mark(ctx, conn, name)
}

func mark(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" IS "+quote(databaseMark)); err != nil {
		return fmt.Errorf("mark database %s as the sandbox's: %w", name, err)
	}
	return nil
}

func isMarked(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var comment *string
	err := conn.QueryRow(ctx, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name).Scan(&comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the comment of database %s: %w", name, err)
	}
	return comment != nil && *comment == databaseMark, nil
}

// CheckDatabase makes sure the database at url is a sandbox's own before
// anything (migrations, jobs) touches it. A marked one may hold the
// sandbox's made-up users, but no server row of a real setup. An unmarked
// one is taken (and marked) only if it holds no wgbot data at all: no
// server row but the sandbox's, no users, no payments. Anything else is
// refused, saying what was found.
func CheckDatabase(ctx context.Context, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", config.RedactURL(dbURL), err)
	}
	defer conn.Close(ctx)
	name := conn.Config().Database
	marked, err := isMarked(ctx, conn, name)
	if err != nil {
		return err
	}
	found, err := productionData(ctx, conn)
	if err != nil {
		return fmt.Errorf("look into database %s: %w", name, err)
	}
	where := fmt.Sprintf("database %s on %s", name, conn.Config().Host)
	switch {
	case marked && len(found.servers) > 0:
		return fmt.Errorf("%s is marked as a sandbox's but holds the server row %s of a real setup; the sandbox refuses to use it "+
			"(it runs every job against emulators). Remove that database, or unset DATABASE_URL to let the sandbox run its own PostgreSQL",
			where, strings.Join(found.servers, ", "))
	case marked:
		return nil
	case found.empty():
		return mark(ctx, conn, name)
	}
	return fmt.Errorf("%s was not made by the sandbox and holds %s: the sandbox fills its database with made-up users and payments "+
		"and runs every job (expiry, reminders, payment notices) against emulators, so it only uses a database of its own. "+
		"It changed nothing there. Remove or rename that database if it is a copy you do not need, "+
		"or unset DATABASE_URL to let the sandbox run its own PostgreSQL", where, found)
}

// foundData is what in a database belongs to a setup other than a sandbox.
type foundData struct {
	servers         []string // server rows other than the sandbox's
	users, payments int64
}

func (f foundData) empty() bool { return len(f.servers) == 0 && f.users == 0 && f.payments == 0 }

func (f foundData) String() string {
	var parts []string
	if len(f.servers) > 0 {
		parts = append(parts, "server rows "+strings.Join(f.servers, ", "))
	}
	if f.users > 0 {
		parts = append(parts, fmt.Sprintf("%d users", f.users))
	}
	if f.payments > 0 {
		parts = append(parts, fmt.Sprintf("%d payments", f.payments))
	}
	return strings.Join(parts, ", ")
}

// productionData looks for wgbot's tables in the current database (a
// database never migrated has none) and what they hold.
func productionData(ctx context.Context, conn *pgx.Conn) (foundData, error) {
	var f foundData
	var servers, users, payments bool
	err := conn.QueryRow(ctx, `SELECT to_regclass('servers') IS NOT NULL, to_regclass('users') IS NOT NULL,
		to_regclass('payments') IS NOT NULL`).Scan(&servers, &users, &payments)
	if err != nil {
		return f, err
	}
	if servers {
		rows, err := conn.Query(ctx, "SELECT name FROM servers WHERE name <> $1 ORDER BY name LIMIT 10", ServerName)
		if err != nil {
			return f, err
		}
		if f.servers, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return f, err
		}
	}
	if users {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&f.users); err != nil {
			return f, err
		}
	}
	if payments {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM payments").Scan(&f.payments); err != nil {
			return f, err
		}
	}
	return f, nil
}

// quote is a SQL string literal (COMMENT takes no parameters).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// withDatabase returns the connection string raw (a URL or key=value
// pairs) pointing at database name.
func withDatabase(raw, name string) (string, error) {
	if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
		// In key=value form a later key wins.
		return raw + " dbname=" + quote(name), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL is not a URL: %w", err)
	}
	u.Path = "/" + name
	q := u.Query()
	if q.Has("dbname") {
		q.Del("dbname")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}
