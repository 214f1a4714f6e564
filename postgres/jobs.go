package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Jobs are inserted in the same transaction as the business change they
// follow (an outbox): if the change commits, its notification will be sent;
// if it rolls back, nothing is. Their workers live in package jobs.

func (s *Store) insertJob(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if s.jobs == nil {
		return nil
	}
	_, err := s.jobs.InsertTx(ctx, tx, args, opts)
	return err
}
