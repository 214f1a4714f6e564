// Package postgres is wgbot's storage: the connection pool, the embedded
// schema migrations and the product's SQL queries. PostgreSQL is the single source of
// truth; one exported function is one transaction is one business step.
package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolConfig is what Open needs; it mirrors the DB_* settings.
type PoolConfig struct {
	URL             string
	MinConns        int32
	MaxConns        int32
	ConnectTimeout  time.Duration
	ApplicationName string
}

// Open creates the one pool of the process and proves the database is
// reachable within the connect timeout. pgxpool.New is lazy, so without the
// ping a wrong password would only show up at the first user's request.
func Open(ctx context.Context, c PoolConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		// pgx's parse error can echo the URL; keep the password out of it.
		return nil, errors.New("DATABASE_URL is not a valid connection string: want postgres://user:password@host:5432/dbname")
	}
	cfg.MinConns = c.MinConns
	cfg.MaxConns = c.MaxConns
	if c.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = c.ConnectTimeout
	}
	if c.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = c.ApplicationName
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, describeConnectError(cfg.ConnConfig, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, describeConnectError(cfg.ConnConfig, err)
	}
	return pool, nil
}

// OpenWaiting retries Open until it succeeds or ctx ends, logging each
// attempt, for systemd units and containers that start before PostgreSQL.
func OpenWaiting(ctx context.Context, c PoolConfig, log *slog.Logger) (*pgxpool.Pool, error) {
	delay := time.Second
	for attempt := 1; ; attempt++ {
		pool, err := Open(ctx, c)
		if err == nil {
			return pool, nil
		}
		log.Warn("waiting for the database", "attempt", attempt, "err", err.Error(), "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// ConnectError is a database that could not be reached at start-up,
// described for the operator: where, why in plain words, and what to check.
type ConnectError struct {
	Host, Port, Database string
	Cause, Hint          string
	Err                  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot connect to PostgreSQL at %s:%s, database %q: %s; %s",
		e.Host, e.Port, e.Database, e.Cause, e.Hint)
}

func (e *ConnectError) Unwrap() error { return e.Err }

func describeConnectError(cc *pgx.ConnConfig, err error) error {
	ce := &ConnectError{Host: cc.Host, Port: fmt.Sprint(cc.Port), Database: cc.Database, Err: err}
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		ce.Cause = "authentication failed (" + pgErr.Message + ")"
		ce.Hint = "check the user name and password in DATABASE_URL and pg_hba.conf"
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		ce.Cause = "database does not exist"
		ce.Hint = fmt.Sprintf("check the database name in DATABASE_URL, or create it (createdb %s)", cc.Database)
	case errors.As(err, &pgErr) && pgErr.Code == "53300":
		ce.Cause = "too many connections"
		ce.Hint = "lower DB_POOL_MAX or raise max_connections on the server"
	case errors.Is(err, syscall.ECONNREFUSED):
		ce.Cause = "connection refused"
		ce.Hint = "check that PostgreSQL is running and listening on that host and port"
	case errors.As(err, &dnsErr):
		ce.Cause = "host name not found"
		ce.Hint = "check the host in DATABASE_URL"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), isTLSError(err):
		ce.Cause = "TLS failed"
		ce.Hint = "check sslmode, sslrootcert and the server certificate in DATABASE_URL"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		ce.Cause = "timed out"
		ce.Hint = "check the host, the port and any firewall in between; DB_CONNECT_TIMEOUT sets the limit"
	default:
		ce.Cause = plainCause(err)
		ce.Hint = "check DATABASE_URL and that the server accepts connections"
	}
	return ce
}

func isTLSError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "tls:") || strings.Contains(msg, "server refused TLS") || strings.Contains(msg, "x509:")
}

// plainCause keeps the last, most specific part of pgx's error chain, which
// never carries the password.
func plainCause(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// inTx runs fn in one transaction: committed if fn returns nil, rolled back
// otherwise (and on panic), so a caller cannot forget either.
func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// retryTx runs fn in a transaction and runs it again when a concurrent
// transaction won a race that fn cannot resolve inside its own snapshot:
// a UNIQUE guard fired on an address (the last guard behind the allocator),
// or a subscription was created meanwhile. Users never see these.
func (s *Store) retryTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = inTx(ctx, s.pool, fn)
		switch {
		case errors.Is(err, errRetry):
			continue
		case isDeadlock(err):
			// A deadlock rolled the whole transaction back: run it again.
			s.deadlocks.Add(1)
			continue
		case constraintOf(err) == "peers_server_ip":
			// The high-water mark fell behind rows written some other way
			// (a restore, a hand edit): move it past them and try again.
			if _, rerr := s.pool.Exec(ctx, `UPDATE servers s SET next_ip = m.ip + 1
				FROM (SELECT server_id, max(ip) AS ip FROM peers WHERE status <> 'revoked' GROUP BY server_id) m
				WHERE s.id = m.server_id AND s.next_ip <= m.ip AND m.ip + 1 << s.subnet`); rerr != nil {
				return rerr
			}
			continue
		}
		return err
	}
	return fmt.Errorf("gave up after repeated conflicts: %w", err)
}

func constraintOf(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	return ""
}

// isDeadlock says PostgreSQL broke a deadlock by aborting this
// transaction (deadlock_detected).
func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}
