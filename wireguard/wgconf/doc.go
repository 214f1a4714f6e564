// Package wgconf reads and rewrites wg-quick configuration files such as
// /etc/wireguard/wg0.conf, replacing only the [Peer] sections wgbot marks as
// its own and keeping every other byte as the operator wrote it.
// Changes go through Writer, which serialises processes with flock on a
// separate lock file and replaces the file atomically, so readers and
// crashes only ever see a whole, parseable file.
package wgconf
