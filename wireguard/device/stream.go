package device

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Reader reads a device whole; *wgctrl.Client and *Control are ones.
type Reader interface {
	Device(name string) (*wgtypes.Device, error)
}

// streamer is a Reader that can also hand over a device's peers one at a
// time; *Control is one.
type streamer interface {
	Stream(iface string, each func(*wgtypes.Peer)) (*wgtypes.Device, error)
}

// Peers reads device iface and calls each for every peer, one at a time:
// the peer, and everything it points to, is valid only during the call.
// It returns the device without its peers. each may be nil. each must not
// block: wireguard-go holds its configuration lock while it answers, so a
// slow each would stall every change to the device, issuances included.
//
// Through a *Control a userspace device is read as it streams in, so the
// cost in memory does not grow with the number of peers; any other Reader
// (a kernel device, a test's fake) is read whole first.
func Peers(r Reader, iface string, each func(*wgtypes.Peer)) (*wgtypes.Device, error) {
	if s, ok := r.(streamer); ok {
		return s.Stream(iface, each)
	}
	d, err := r.Device(iface)
	if err != nil {
		return nil, err
	}
	if each != nil {
		for i := range d.Peers {
			each(&d.Peers[i])
		}
	}
	cp := *d
	cp.Peers = nil
	return &cp, nil
}

// Control reaches WireGuard devices through wgctrl, and reads the peers of
// a userspace device (wireguard-go) itself, over the same control socket.
// wgctrl parses a whole device into memory: at 50,000 peers that is about
// 15 MB held at once, plus the garbage of parsing it, on every traffic
// collection and resync.
type Control struct {
	*wgctrl.Client
	// SocketDir holds the userspace devices' control sockets.
	SocketDir string
}

// Open returns a Control; Close releases it.
func Open() (*Control, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, err
	}
	return &Control{Client: c, SocketDir: "/var/run/wireguard"}, nil
}

// Stream is Peers for a Control. A device without a control socket (a
// kernel device, or one that is not there) is read through wgctrl, which
// also words the errors.
func (c *Control) Stream(iface string, each func(*wgtypes.Peer)) (*wgtypes.Device, error) {
	conn, err := net.Dial("unix", filepath.Join(c.SocketDir, iface+".sock"))
	if err != nil {
		return Peers(c.Client, iface, each)
	}
	defer conn.Close()
	// A device that stops answering must not hold the reconciler forever.
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, "get=1\n\n"); err != nil {
		return nil, fmt.Errorf("read wireguard interface %s: %w", iface, err)
	}
	d, err := parseUAPI(bufio.NewReaderSize(conn, 64<<10), each)
	if err != nil {
		return nil, fmt.Errorf("read wireguard interface %s: %w", iface, err)
	}
	d.Name, d.Type = iface, wgtypes.Userspace
	return d, nil
}

// parseUAPI reads the answer to a get operation of the cross-platform
// userspace protocol (https://www.wireguard.com/xplatform/): key=value
// lines, the device's first, then each peer's starting at its public_key,
// then errno and an empty line. One Peer is filled again for every peer,
// pointing into buffers that are reused too, so a read allocates nothing
// per peer.
func parseUAPI(r *bufio.Reader, each func(*wgtypes.Peer)) (*wgtypes.Device, error) {
	var (
		d        wgtypes.Device
		p        wgtypes.Peer
		inPeer   bool
		buf      peerBuffers
		errno    int64
		sawErrno bool
	)
	flush := func() {
		if inPeer && each != nil {
			if buf.hsSec != 0 || buf.hsNsec != 0 {
				p.LastHandshakeTime = time.Unix(buf.hsSec, buf.hsNsec)
			}
			each(&p)
		}
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			break
		}
		key, value, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return nil, fmt.Errorf("invalid line %q", line)
		}
		switch {
		case string(key) == "errno":
			// 0, or a negative errno value from wireguard-go on Linux.
			errno, err = parseErrno(value)
			sawErrno = true
		case string(key) == "public_key":
			flush()
			inPeer, buf.hsSec, buf.hsNsec, buf.addrs = true, 0, 0, buf.addrs[:0]
			p = wgtypes.Peer{AllowedIPs: p.AllowedIPs[:0]}
			err = parseKey(&p.PublicKey, value)
		case inPeer:
			err = parsePeerField(&p, &buf, key, value)
		case string(key) == "private_key":
			err = parseKey(&d.PrivateKey, value)
			d.PublicKey = d.PrivateKey.PublicKey()
		case string(key) == "listen_port":
			d.ListenPort, err = parseInt(value)
		case string(key) == "fwmark":
			d.FirewallMark, err = parseInt(value)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if !sawErrno {
		return nil, errors.New("the answer has no errno: cut short")
	}
	if errno != 0 {
		return nil, os.NewSyscallError("get", fmt.Errorf("errno=%d", errno))
	}
	flush()
	return &d, nil
}

// peerBuffers hold what the Peer being read points to, and its handshake
// time until both halves are read.
type peerBuffers struct {
	addrs         []byte // the bytes of the allowed IPs' addresses and masks
	endpoint      net.UDPAddr
	endpointIP    [16]byte
	hsSec, hsNsec int64
}

func parsePeerField(p *wgtypes.Peer, buf *peerBuffers, key, value []byte) error {
	var err error
	var v uint64
	switch string(key) {
	case "preshared_key":
		return parseKey(&p.PresharedKey, value)
	case "protocol_version":
		p.ProtocolVersion, err = parseInt(value)
	case "endpoint":
		ap, err := netip.ParseAddrPort(transient(value))
		if err != nil {
			return fmt.Errorf("%q is not an address and port", value)
		}
		a := ap.Addr()
		n := copy(buf.endpointIP[:], a.AsSlice())
		buf.endpoint = net.UDPAddr{IP: buf.endpointIP[:n:n], Port: int(ap.Port()), Zone: a.Zone()}
		p.Endpoint = &buf.endpoint
	case "last_handshake_time_sec":
		v, err = parseUint(value)
		buf.hsSec = int64(v)
	case "last_handshake_time_nsec":
		v, err = parseUint(value)
		buf.hsNsec = int64(v)
	case "tx_bytes":
		v, err = parseUint(value)
		p.TransmitBytes = int64(v)
	case "rx_bytes":
		v, err = parseUint(value)
		p.ReceiveBytes = int64(v)
	case "persistent_keepalive_interval":
		v, err = parseUint(value)
		p.PersistentKeepaliveInterval = time.Duration(v) * time.Second
	case "allowed_ip":
		return appendAllowedIP(p, &buf.addrs, value)
	}
	return err
}

// appendAllowedIP adds prefix text such as 10.0.0.2/32 to p.AllowedIPs,
// its address and mask stored in addrs. When addrs grows, the prefixes
// added before keep pointing into the old array, which stays valid.
func appendAllowedIP(p *wgtypes.Peer, addrs *[]byte, text []byte) error {
	slash := bytes.IndexByte(text, '/')
	if slash < 0 {
		return fmt.Errorf("%q is not a prefix", text)
	}
	addr, err := netip.ParseAddr(transient(text[:slash]))
	if err != nil {
		return fmt.Errorf("%q is not a prefix", text)
	}
	bits, err := parseInt(text[slash+1:])
	if err != nil || bits > addr.BitLen() {
		return fmt.Errorf("%q is not a prefix", text)
	}
	n := addr.BitLen() / 8
	start := len(*addrs)
	if addr.Is4() {
		a4 := addr.As4()
		*addrs = append(*addrs, a4[:]...)
	} else {
		a16 := addr.As16()
		*addrs = append(*addrs, a16[:]...)
	}
	for i := range n {
		ones := min(max(bits-8*i, 0), 8)
		*addrs = append(*addrs, byte(0xff<<(8-ones)))
	}
	b := (*addrs)[start:len(*addrs):len(*addrs)]
	p.AllowedIPs = append(p.AllowedIPs, net.IPNet{IP: net.IP(b[:n:n]), Mask: net.IPMask(b[n:])})
	return nil
}

// transient is b as a string without a copy, for a parser that keeps none
// of it (an Addr holds no text, its zone is copied), while b is not
// changed: netip's UnmarshalText copies each address into a new string,
// 100,000 of them in a read of 50,000 peers. Errors made of it must copy b.
func transient(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func parseKey(k *wgtypes.Key, hexText []byte) error {
	if hex.DecodedLen(len(hexText)) != len(k) {
		return fmt.Errorf("key of %d hex digits", len(hexText))
	}
	_, err := hex.Decode(k[:], hexText)
	return err
}

// parseUint reads a decimal number up to math.MaxInt64 without the string
// conversion that strconv would need for each of a device's half a million
// fields.
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%q is not a number", b)
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' || v > (math.MaxInt64-uint64(c-'0'))/10 {
			return 0, fmt.Errorf("%q is not a number", b)
		}
		v = v*10 + uint64(c-'0')
	}
	return v, nil
}

func parseErrno(b []byte) (int64, error) {
	neg := bytes.HasPrefix(b, []byte("-"))
	v, err := parseUint(bytes.TrimPrefix(b, []byte("-")))
	if neg {
		return -int64(v), err
	}
	return int64(v), err
}

func parseInt(b []byte) (int, error) {
	v, err := parseUint(b)
	return int(v), err
}
