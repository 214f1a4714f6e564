package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"wgbot"
)

// ReceiptContact is the email or phone the user gave for receipts, "" if
// none.
func (s *Store) ReceiptContact(ctx context.Context, userID int64) (string, error) {
	var c *string
	err := s.pool.QueryRow(ctx, `SELECT receipt_contact FROM users WHERE id = $1`, userID).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", wgbot.ErrUserNotFound
	}
	if err != nil || c == nil {
		return "", err
	}
	return *c, nil
}

// SetReceiptContact stores a contact already normalized by
// wgbot.NormalizeReceiptContact.
func (s *Store) SetReceiptContact(ctx context.Context, userID int64, contact string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET receipt_contact = $2 WHERE id = $1`, userID, contact)
	if err == nil && tag.RowsAffected() == 0 {
		return wgbot.ErrUserNotFound
	}
	return err
}
