// Package wgtest builds real WireGuard test setups: network namespaces, veth
// links between them and wireguard-go devices running inside them.
//
// Every helper cleans up after itself through t.Cleanup and fails the test,
// never skips it, when the machine lacks what it needs.
package wgtest
