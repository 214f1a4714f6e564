package importer

import (
	"fmt"
	"strings"

	"wgbot/wireguard/wgconf"
)

// WgQuick reads the hand-made [Peer] sections of a wg-quick server file
// with wgconf's parser (the one the reconciler uses, so what it reads is
// what wg-quick would). The file holds no client's private key: those
// devices keep working, but no config can be shown for them. Sections
// wgbot already manages are its own and are left out. A peer's name is
// the comment right above its [Peer] line ("# alice", "### Client alice",
// "# BEGIN_PEER alice").
func WgQuick(data []byte) (List, error) {
	f, err := wgconf.Parse(data)
	if err != nil {
		return List{}, fmt.Errorf("wg-quick file: %w", err)
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	l := List{Source: FromWgQuick}
	for _, u := range f.UnmanagedPeers() {
		ref := fmt.Sprintf("line %d", u.Line)
		addrs := make([]string, len(u.AllowedIPs))
		for i, a := range u.AllowedIPs {
			addrs[i] = a.String()
		}
		c, why := client(ref, nameAbove(lines, u.Line-1), u.PublicKey, "", u.PresharedKey, addrs)
		if why != "" {
			l.Skipped = append(l.Skipped, Skipped{Ref: ref, Name: c.Name, Reason: why})
			continue
		}
		c.Keepalive = u.PersistentKeepalive
		l.Clients = append(l.Clients, c)
	}
	return l, nil
}

// nameAbove is the comment on the line right above line index i, without
// its "#" marks and the prefixes common installers write.
func nameAbove(lines []string, i int) string {
	if i <= 0 || i > len(lines) {
		return ""
	}
	s := strings.TrimSpace(lines[i-1])
	if !strings.HasPrefix(s, "#") || strings.HasPrefix(s, "# wgbot:") {
		return ""
	}
	s = strings.TrimSpace(strings.TrimLeft(s, "#"))
	for _, p := range []string{"BEGIN_PEER ", "Client:", "Client ", "Name:", "Name =", "Name="} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = strings.TrimSpace(s[len(p):])
			break
		}
	}
	return s
}
