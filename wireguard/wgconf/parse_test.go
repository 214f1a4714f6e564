package wgconf

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseDecodesEveryKey(t *testing.T) {
	t.Parallel()
	f := mustParse(t, mustReadFile(t, "testdata/dualstack-nft.conf"))

	ifc, ok := f.Interface()
	if !ok {
		t.Fatal("Interface: not found")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Line", ifc.Line, 2},
		{"PrivateKey", ifc.PrivateKey, testKey("server-priv")},
		{"ListenPort", ifc.ListenPort, 443},
		{"FwMark", ifc.FwMark, uint32(0xca6c)},
		{"Addresses", ifc.Addresses, prefixes("10.66.0.1/22", "fd42:42:42::1/64", "2001:db8:ac1::1/64")},
		{"DNS", ifc.DNS, []string{"10.66.0.1", "fd42:42:42::1", "vpn.example"}},
		{"MTU", ifc.MTU, 1380},
		{"Table", ifc.Table, "off"},
		{"SaveConfig", ifc.SaveConfig, false},
		{"PreUp", ifc.PreUp, []string{"sysctl -w net.ipv4.ip_forward=1", "sysctl -w net.ipv6.conf.all.forwarding=1"}},
		{"PostUp", len(ifc.PostUp), 3},
		{"PostUp[0]", ifc.PostUp[0], `nft add table inet wg0; nft add chain inet wg0 post '{ type nat hook postrouting priority 100; }'`},
		{"PostDown", ifc.PostDown, []string{"nft delete table inet wg0", "ip -6 rule del from fd42:42:42::/64 table 200"}},
		{"PreDown", ifc.PreDown, []string(nil)},
		{"unknown key kept", ifc.Entries[len(ifc.Entries)-1], KeyValue{Key: "Jmax", Value: "70", Line: 22}},
		{"entries", len(ifc.Entries), 19},
	}
	for _, c := range checks {
		t.Run("interface "+c.name, func(t *testing.T) {
			if !equalAny(c.got, c.want) {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}

	peers := f.UnmanagedPeers()
	if len(peers) != 2 {
		t.Fatalf("UnmanagedPeers: got %d, want 2", len(peers))
	}
	want := []UnmanagedPeer{
		{
			Line:                25,
			PublicKey:           testKey("office-router"),
			Endpoint:            "[2001:db8:ffff::2]:51820",
			AllowedIPs:          prefixes("10.66.3.0/24", "192.168.10.0/24", "fd42:42:42:10::/64"),
			PersistentKeepalive: 25,
		},
		{
			Line:         32,
			PublicKey:    testKey("v6-host"),
			PresharedKey: testKey("phone-psk"),
			// Bare addresses mean single hosts, as in wg(8).
			AllowedIPs: prefixes("10.66.0.200/32", "fd42:42:42::200/128"),
			Endpoint:   "vpn-phone.example.net:51820",
		},
	}
	for i, w := range want {
		got := peers[i]
		got.Entries = nil
		if !equalAny(got, w) {
			t.Errorf("peer %d: got %+v, want %+v", i, got, w)
		}
	}
	if n := len(peers[1].Entries); n != 5 {
		t.Errorf("peer 1 entries: got %d, want 5", n)
	}
	if got := f.ManagedPeers(); len(got) != 0 {
		t.Errorf("ManagedPeers: got %v, want none", got)
	}
}

func equalAny(a, b any) bool {
	switch a := a.(type) {
	case []netip.Prefix:
		return slices.Equal(a, b.([]netip.Prefix))
	case []string:
		return slices.Equal(a, b.([]string))
	case UnmanagedPeer:
		b := b.(UnmanagedPeer)
		return a.Line == b.Line && a.PublicKey == b.PublicKey && a.PresharedKey == b.PresharedKey &&
			slices.Equal(a.AllowedIPs, b.AllowedIPs) && a.Endpoint == b.Endpoint &&
			a.PersistentKeepalive == b.PersistentKeepalive
	}
	return a == b
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	pub := testKey("a")
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, f *File)
	}{
		{"empty", "", func(t *testing.T, f *File) {
			if _, ok := f.Interface(); ok {
				t.Error("empty file has an [Interface]")
			}
		}},
		{"only blank lines and comments", "\n  \n# c\r\n\t# d\n", nil},
		{"no final newline", "[Interface]\nListenPort = 1", func(t *testing.T, f *File) {
			if ifc, _ := f.Interface(); ifc.ListenPort != 1 {
				t.Errorf("ListenPort %d", ifc.ListenPort)
			}
		}},
		{"CRLF", "[Interface]\r\nListenPort = 2\r\n[Peer]\r\nPublicKey = " + pub + "\r\n", func(t *testing.T, f *File) {
			if ifc, _ := f.Interface(); ifc.ListenPort != 2 {
				t.Errorf("ListenPort %d", ifc.ListenPort)
			}
			if p := f.UnmanagedPeers(); len(p) != 1 || p[0].PublicKey != pub || p[0].Line != 3 {
				t.Errorf("peers %+v", p)
			}
		}},
		{"case-insensitive headers and keys, as wg(8)", "[INTERFACE]\nlistenport=3\n[ peer ]\npublickey=" + pub + "\n", func(t *testing.T, f *File) {
			if ifc, _ := f.Interface(); ifc.ListenPort != 3 {
				t.Errorf("ListenPort %d", ifc.ListenPort)
			}
			if len(f.UnmanagedPeers()) != 1 {
				t.Error("peer not found")
			}
		}},
		{"inline comments", "[Interface] # the server\nListenPort = 4 # port\n", func(t *testing.T, f *File) {
			if ifc, _ := f.Interface(); ifc.ListenPort != 4 {
				t.Errorf("ListenPort %d", ifc.ListenPort)
			}
		}},
		{"repeated single key: last wins, as wg(8)", "[Peer]\nPublicKey = " + testKey("x") + "\nPublicKey = " + pub + "\n", func(t *testing.T, f *File) {
			if p := f.UnmanagedPeers(); p[0].PublicKey != pub || len(p[0].Entries) != 2 {
				t.Errorf("peer %+v", p[0])
			}
		}},
		{"repeated AllowedIPs add up", "[Peer]\nPublicKey = " + pub + "\nAllowedIPs = 10.0.0.1/32\nAllowedIPs = ::/0, 0.0.0.0/0\n", func(t *testing.T, f *File) {
			if got := f.UnmanagedPeers()[0].AllowedIPs; !slices.Equal(got, prefixes("10.0.0.1/32", "::/0", "0.0.0.0/0")) {
				t.Errorf("AllowedIPs %v", got)
			}
		}},
		{"two [Interface] sections merge, as in wg(8)", "[Interface]\nListenPort = 5\n[Interface]\nMTU = 1400\n", func(t *testing.T, f *File) {
			if ifc, _ := f.Interface(); ifc.ListenPort != 5 || ifc.MTU != 1400 || ifc.Line != 1 {
				t.Errorf("interface %+v", ifc)
			}
		}},
		{"empty AllowedIPs", "[Peer]\nPublicKey = " + pub + "\nAllowedIPs =\n", nil},
		{"off values", "[Interface]\nFwMark = off\n[Peer]\nPublicKey = " + pub + "\nPersistentKeepalive = off\n", nil},
		{"unknown keys kept", "[Interface]\nH1 = 12345\n[Peer]\nPublicKey = " + pub + "\nX-Note = hello\n", func(t *testing.T, f *File) {
			ifc, _ := f.Interface()
			if ifc.Entries[0] != (KeyValue{Key: "H1", Value: "12345", Line: 2}) {
				t.Errorf("interface entries %v", ifc.Entries)
			}
			if e := f.UnmanagedPeers()[0].Entries[1]; e != (KeyValue{Key: "X-Note", Value: "hello", Line: 5}) {
				t.Errorf("peer entry %v", e)
			}
		}},
		{"IPv4-mapped and IPv6 endpoint", "[Peer]\nPublicKey = " + pub + "\nEndpoint = [::ffff:192.0.2.1]:51820\nAllowedIPs = ::ffff:10.0.0.1/128\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, []byte(tt.in))
			if got := string(f.Render()); got != tt.in {
				t.Errorf("Render changed an untouched file:\n got %q\nwant %q", got, tt.in)
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	pub := testKey("a")
	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw=="
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantMsg  string
	}{
		{"key before any section", "ListenPort = 1\n[Interface]\n", 1, "before the first [Interface] or [Peer]"},
		{"unknown section", "[Interface]\n[Peers]\n", 2, "unknown section"},
		{"no equals sign", "[Interface]\n\nPrivateKey " + secret + "\n", 3, "invalid key"},
		{"no equals sign, one word", "[Interface]\n\n" + secret[:40] + "\n", 3, `not a [Section], a "Key = Value" pair`},
		{"missing key", "[Interface]\n = 5\n", 2, "missing key"},
		{"key with a space", "[Interface]\nListen Port = 5\n", 2, "invalid key"},
		{"bad PrivateKey", "[Interface]\nPrivateKey = " + secret[:40] + "\n", 2, "invalid PrivateKey"},
		{"PrivateKey with a space", "[Interface]\nPrivateKey = " + secret[:20] + " " + secret[21:] + "\n", 2, "not base64"},
		{"ListenPort too big", "[Interface]\nListenPort = 70000\n", 2, "invalid ListenPort"},
		{"bad FwMark", "[Interface]\nFwMark = 0xfffffffff\n", 2, "invalid FwMark"},
		{"bad Address", "[Interface]\nAddress = 10.0.0.1/33\n", 2, `invalid Address: "10.0.0.1/33"`},
		{"bad SaveConfig", "[Interface]\nSaveConfig = yes\n", 2, "invalid SaveConfig"},
		{"bad MTU", "[Interface]\nMTU = big\n", 2, "invalid MTU"},
		{"peer without PublicKey", "[Interface]\n\n[Peer]\nAllowedIPs = 10.0.0.1/32\n", 3, "no PublicKey"},
		{"bad PublicKey", "[Peer]\nPublicKey = abc\n", 2, "invalid PublicKey"},
		{"bad PresharedKey", "[Peer]\nPublicKey = " + pub + "\nPresharedKey = " + secret + "x\n", 3, "invalid PresharedKey"},
		{"bad AllowedIPs", "[Peer]\nPublicKey = " + pub + "\nAllowedIPs = 10.0.0.300/32\n", 3, "invalid AllowedIPs"},
		{"empty item in AllowedIPs", "[Peer]\nPublicKey = " + pub + "\nAllowedIPs = 10.0.0.1/32,,10.0.0.2/32\n", 3, "empty item"},
		{"zone in AllowedIPs", "[Peer]\nPublicKey = " + pub + "\nAllowedIPs = fe80::1%eth0\n", 3, "invalid AllowedIPs"},
		{"Endpoint without port", "[Peer]\nPublicKey = " + pub + "\nEndpoint = vpn.example.com\n", 3, "invalid Endpoint"},
		{"Endpoint port too big", "[Peer]\nPublicKey = " + pub + "\nEndpoint = 192.0.2.1:99999\n", 3, "port must be"},
		{"bad PersistentKeepalive", "[Peer]\nPublicKey = " + pub + "\nPersistentKeepalive = -1\n", 3, "invalid PersistentKeepalive"},
		{"first error in file order", "[Peer]\nPublicKey = bad\n[Interface]\nListenPort = bad\n", 2, "invalid PublicKey"},
		{"interface error before a peer error", "[Interface]\nListenPort = bad\n[Peer]\nPublicKey = bad\n", 2, "invalid ListenPort"},
		{"pasted key before any section", secret + "\n[Interface]\n", 1, "before the first"},
		{"CRLF line numbers", "[Interface]\r\n\r\nListenPort = x\r\n", 3, "invalid ListenPort"},
		{"error in a managed peer", "# wgbot:peer 1\n[Peer]\nPublicKey = bad\n", 3, "invalid PublicKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", f)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if pe.Line != tt.wantLine {
				t.Errorf("Line: got %d, want %d (%v)", pe.Line, tt.wantLine, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			// Errors get logged; they must not carry key material.
			if strings.Contains(err.Error(), secret[:20]) {
				t.Errorf("error %q leaks the key", err)
			}
		})
	}
}

func TestMarkers(t *testing.T) {
	t.Parallel()
	a, b := testKey("a"), testKey("b")
	tests := []struct {
		name          string
		in            string
		wantManaged   []string
		wantUnmanaged int
		// Render after SetManagedPeers(ManagedPeers()).
		wantRerender string
	}{
		{
			name:         "marker right before [Peer]",
			in:           "[Interface]\nListenPort = 1\n\n# wgbot:peer 42\n[Peer]\nPublicKey = " + a + "\n",
			wantManaged:  []string{"42"},
			wantRerender: "[Interface]\nListenPort = 1\n\n# wgbot:peer 42\n[Peer]\nPublicKey = " + a + "\n",
		},
		{
			name:          "blank line between marker and [Peer]: the peer is hand-made, the marker dropped",
			in:            "# wgbot:peer 42\n\n[Peer]\nPublicKey = " + a + "\n",
			wantUnmanaged: 1,
			wantRerender:  "\n[Peer]\nPublicKey = " + a + "\n",
		},
		{
			name:          "invalid id: an ordinary comment",
			in:            "# wgbot:peer no spaces allowed\n[Peer]\nPublicKey = " + a + "\n",
			wantUnmanaged: 1,
			wantRerender:  "# wgbot:peer no spaces allowed\n[Peer]\nPublicKey = " + a + "\n",
		},
		{
			name:         "marker before [Interface] marks nothing",
			in:           "# wgbot:peer 1\n[Interface]\nListenPort = 1\n",
			wantRerender: "[Interface]\nListenPort = 1\n",
		},
		{
			name:         "two markers: the one next to [Peer] counts",
			in:           "# wgbot:peer 1\n# wgbot:peer 2\n[Peer]\nPublicKey = " + a + "\n",
			wantManaged:  []string{"2"},
			wantRerender: "# wgbot:peer 2\n[Peer]\nPublicKey = " + a + "\n",
		},
		{
			// Without dropping the stray marker it would come to mark the
			// hand-made peer once the managed block between them is gone.
			name:          "stray marker cannot capture a hand-made peer",
			in:            "# wgbot:peer x\n\n# wgbot:peer y\n[Peer]\nPublicKey = " + a + "\n[Peer]\nPublicKey = " + b + "\n",
			wantManaged:   []string{"y"},
			wantUnmanaged: 1,
			wantRerender:  "[Peer]\nPublicKey = " + b + "\n\n# wgbot:peer y\n[Peer]\nPublicKey = " + a + "\n",
		},
		{
			name:          "comments after a managed peer belong to what follows",
			in:            "# wgbot:peer 1\n[Peer]\nPublicKey = " + a + "\n# inside\nAllowedIPs = 10.0.0.1/32\n\n# laptop\n[Peer]\nPublicKey = " + b + "\n",
			wantManaged:   []string{"1"},
			wantUnmanaged: 1,
			wantRerender:  "\n# laptop\n[Peer]\nPublicKey = " + b + "\n\n# wgbot:peer 1\n[Peer]\nPublicKey = " + a + "\nAllowedIPs = 10.0.0.1/32\n",
		},
		{
			name:         "indented marker",
			in:           "  # wgbot:peer a-b_c.d:e  \n[Peer]\nPublicKey = " + a + "\n",
			wantManaged:  []string{"a-b_c.d:e"},
			wantRerender: "# wgbot:peer a-b_c.d:e\n[Peer]\nPublicKey = " + a + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, []byte(tt.in))
			if got := peerIDs(f.ManagedPeers()); !slices.Equal(got, tt.wantManaged) && len(got)+len(tt.wantManaged) > 0 {
				t.Errorf("managed ids: got %q, want %q", got, tt.wantManaged)
			}
			if got := len(f.UnmanagedPeers()); got != tt.wantUnmanaged {
				t.Errorf("unmanaged peers: got %d, want %d", got, tt.wantUnmanaged)
			}
			if err := f.SetManagedPeers(f.ManagedPeers()); err != nil {
				t.Fatal(err)
			}
			out := f.Render()
			if string(out) != tt.wantRerender {
				t.Errorf("rerender:\n got %q\nwant %q", out, tt.wantRerender)
			}
			// The rerendered file is a fixed point.
			g := mustParse(t, out)
			if err := g.SetManagedPeers(g.ManagedPeers()); err != nil {
				t.Fatal(err)
			}
			if again := g.Render(); string(again) != string(out) {
				t.Errorf("second rerender differs:\n got %q\nwant %q", again, out)
			}
		})
	}
}
