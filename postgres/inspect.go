package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Inspect describes the database for `wgbot check`: server version, schema
// version and row counts, without touching anything.
func Inspect(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	var serverVersion string
	var schemaVersion int64
	err := pool.QueryRow(ctx, `SELECT current_setting('server_version'),
		COALESCE((SELECT max(version_id) FROM goose_db_version WHERE is_applied), 0)`).
		Scan(&serverVersion, &schemaVersion)
	if err != nil {
		// goose_db_version is missing until the first migrate.
		if err := pool.QueryRow(ctx, `SELECT current_setting('server_version')`).Scan(&serverVersion); err != nil {
			return nil, fmt.Errorf("inspect database: %w", err)
		}
		return []string{"PostgreSQL " + serverVersion, "schema: not migrated (run wgbot migrate)"}, nil
	}
	lines := []string{"PostgreSQL " + serverVersion, fmt.Sprintf("schema version %d", schemaVersion)}
	var users, active, peers int64
	err = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users),
		(SELECT count(*) FROM subscriptions WHERE status = 'active'),
		(SELECT count(*) FROM peers WHERE status = 'active')`).Scan(&users, &active, &peers)
	if err != nil {
		return nil, fmt.Errorf("inspect database: %w", err)
	}
	return append(lines, fmt.Sprintf("%d users, %d active subscriptions, %d active peers", users, active, peers)), nil
}
