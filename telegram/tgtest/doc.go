// Package tgtest is a stateful, in-process emulator of the Telegram Bot API
// that speaks Telegram's wire formats, so bot code runs unchanged against it.
// Tests inject updates as users, inspect what the bot sent and inject
// faults; a sandbox can serve the same emulator on a loopback listener.
package tgtest
