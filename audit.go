package wgbot

import "time"

// AuditEntry is one admin action of the audit log: who did what to whom,
// when, and the state before and after. Every front door records its own
// (the panel, the bot's admin commands, the operator CLI).
type AuditEntry struct {
	ID       int64
	At       time.Time
	Source   string // AuditPanel, AuditBot or AuditCLI
	AdminID  int64  // the admin's Telegram id; 0 for the CLI's operator
	Action   string // sign_in, grant, refund, revoke, ban, unban, message, broadcast, issue, drain, enable
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
