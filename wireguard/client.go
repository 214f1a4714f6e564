// Package wireguard renders what a user imports into a WireGuard app: the
// client .conf and its QR code. Its subpackages handle the server side: the
// wg0.conf file (wgconf), the live device (device) and test networks (wgtest).
package wireguard

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// ClientConfig is one device's view of the tunnel.
type ClientConfig struct {
	PrivateKey      wgtypes.Key
	Addresses       []netip.Prefix // the peer's tunnel addresses, /32 and /128
	DNS             []string
	MTU             int
	ServerPublicKey string
	PresharedKey    wgtypes.Key
	Endpoint        string
	AllowedIPs      []netip.Prefix // what the client routes into the tunnel
	Keepalive       int
}

// Render returns the wg-quick .conf text the user imports.
func (c ClientConfig) Render() []byte {
	var b bytes.Buffer
	b.WriteString("[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", c.PrivateKey)
	fmt.Fprintf(&b, "Address = %s\n", joinPrefixes(c.Addresses))
	if len(c.DNS) > 0 {
		fmt.Fprintf(&b, "DNS = %s\n", strings.Join(c.DNS, ", "))
	}
	if c.MTU > 0 {
		fmt.Fprintf(&b, "MTU = %d\n", c.MTU)
	}
	b.WriteString("\n[Peer]\n")
	fmt.Fprintf(&b, "PublicKey = %s\n", c.ServerPublicKey)
	fmt.Fprintf(&b, "PresharedKey = %s\n", c.PresharedKey)
	fmt.Fprintf(&b, "Endpoint = %s\n", c.Endpoint)
	fmt.Fprintf(&b, "AllowedIPs = %s\n", joinPrefixes(c.AllowedIPs))
	if c.Keepalive > 0 {
		fmt.Fprintf(&b, "PersistentKeepalive = %d\n", c.Keepalive)
	}
	return b.Bytes()
}

// QRCode encodes the config as a PNG that WireGuard's mobile apps scan.
// Every module is 8 whole pixels (a negative size): a fixed image width
// would give modules of uneven width, which some decoders misread.
func QRCode(conf []byte) ([]byte, error) {
	png, err := qrcode.Encode(string(conf), qrcode.Medium, -8)
	if err != nil {
		return nil, fmt.Errorf("encode config as QR code: %w", err)
	}
	return png, nil
}

// QRCodeTerminal draws the config as a QR code with block characters for a
// terminal, like `pivpn -qr`.
func QRCodeTerminal(conf []byte) (string, error) {
	q, err := qrcode.New(string(conf), qrcode.Low)
	if err != nil {
		return "", fmt.Errorf("encode config as QR code: %w", err)
	}
	return q.ToSmallString(false), nil
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
