package wgbot

import (
	"context"
	"time"
)

// AuditEntry is one admin action of the audit log: who did what to whom,
// when, and the state before and after. Every front door records its own
// (the panel, the bot's admin commands, the operator CLI).
type AuditEntry struct {
	ID       int64
	At       time.Time
	Source   string // AuditPanel, AuditBot or AuditCLI
	AdminID  int64  // the admin's Telegram id; 0 for the CLI's operator
	Action   string // sign_in, grant, refund, revoke, ban, unban, message, broadcast, issue, drain, enable, server_add, server_remove, promo_add, promo_disable
	TargetID int64  // the user's Telegram id; 0: none
	Before   map[string]any
	After    map[string]any
}

// Sources of audit entries.
const (
	AuditPanel = "panel"
	AuditBot   = "bot"
	AuditCLI   = "cli"
)

type auditKey struct{}

// WithAudit marks ctx as an admin's action: the store records e in the
// same transaction as the change it makes under ctx, adding the state
// before and after it read there, so a change and its audit row commit
// together or not at all. A call that changes nothing (a second ban, a
// refund already done) records nothing.
func WithAudit(ctx context.Context, e AuditEntry) context.Context {
	return context.WithValue(ctx, auditKey{}, e)
}

// AuditOf is the entry WithAudit put in ctx.
func AuditOf(ctx context.Context) (AuditEntry, bool) {
	e, ok := ctx.Value(auditKey{}).(AuditEntry)
	return e, ok
}
