package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// QueryRowForTest runs a query on the pool (tests read tables directly).
func (s *Store) QueryRowForTest(ctx context.Context, sql string, args ...any) pgx.Row {
	return s.pool.QueryRow(ctx, sql, args...)
}
