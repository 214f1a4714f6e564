// Package device brings a live WireGuard interface to a desired set of peers
// through wgctrl, which speaks netlink to the kernel and the UAPI socket to
// userspace implementations such as wireguard-go.
//
// It computes the difference between the device and the desired peers and
// applies only that, so peers that did not change keep their sessions.
package device
