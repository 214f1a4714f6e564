// Package sandbox stands in for wgbot's outside world so the whole product
// runs on one laptop, without a Telegram token, root or a database server:
// a private PostgreSQL cluster, a web page that plays Telegram clients
// against the Bot API emulator, and the checks that keep sandbox mode out of
// production.
//
// Nothing here changes how wgbot behaves: `wgbot sandbox` runs the same
// handlers, service, allocator, reconciler and jobs as `wgbot serve`; only
// Telegram, the payment provider, the database server and the WireGuard
// interface are swapped for local stand-ins.
package sandbox
