package service

import (
	"context"

	"wgbot"
)

// ReceiptContact is the email or phone the user gave for fiscal receipts,
// "" if they have not yet.
func (s *Service) ReceiptContact(ctx context.Context, userID int64) (string, error) {
	return s.store.ReceiptContact(ctx, userID)
}

// SetReceiptContact checks and stores what the user typed as their receipt
// contact and returns the stored form; bad input is
// wgbot.ErrReceiptContact and changes nothing.
func (s *Service) SetReceiptContact(ctx context.Context, user wgbot.User, typed string) (string, error) {
	c, err := wgbot.NormalizeReceiptContact(typed)
	if err != nil {
		return "", err
	}
	return c, s.store.SetReceiptContact(ctx, user.ID, c)
}
