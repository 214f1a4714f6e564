package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"wgbot/wireguard/wgconf"
)

// EnsureServerConfig gives the sandbox's wg0.conf at path a server
// [Interface] with a fresh private key on first use, and keeps the file
// (key, peers and all) afterwards. wgbot then reads the server's public key
// from it and keeps its peers in sync, in file-only mode: no interface, no
// root. created reports a new file.
func EnsureServerConfig(path string, address netip.Prefix, listenPort int) (created bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		f, err := wgconf.Parse(data)
		if err != nil {
			return false, fmt.Errorf("%s: %w (remove it to let the sandbox write a new one)", path, err)
		}
		if ifc, ok := f.Interface(); !ok || ifc.PrivateKey == "" {
			return false, fmt.Errorf("%s has no [Interface] PrivateKey; remove it to let the sandbox write a new one", path)
		}
		return false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return false, err
	}
	text := fmt.Sprintf("# The sandbox's WireGuard server (file only: no interface is created).\n"+
		"# wgbot keeps the [Peer] sections below its markers in sync with the database.\n"+
		"[Interface]\nAddress = %s\nListenPort = %d\nPrivateKey = %s\n", address, listenPort, key)
	if err := wgconf.WriteFileAtomic(path, []byte(text)); err != nil {
		return false, err
	}
	return true, nil
}
