// Package device brings a live WireGuard interface to a desired set of peers
// through wgctrl, which speaks netlink to the kernel and the UAPI socket to
// userspace implementations such as wireguard-go.
//
// It computes the difference between the device and the desired peers and
// applies only that, so peers that did not change keep their sessions.
//
// Reads go through Peers, which hands over one peer at a time. A
// userspace device is read by Control itself, over the same UAPI socket,
// as the answer streams in: wgctrl would first parse the whole device into
// memory (about 15 MB at 50,000 peers, and as much garbage). A kernel
// device is still read whole through wgctrl.
package device
