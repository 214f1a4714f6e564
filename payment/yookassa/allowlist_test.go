package yookassa_test

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"wgbot/payment/yookassa"
)

func TestDefaultIPAllowList(t *testing.T) {
	t.Parallel()
	list := yookassa.DefaultIPAllowList()
	tests := []struct {
		addr string
		want bool
	}{
		{"185.71.76.0", true},
		{"185.71.76.31", true}, // last address of the /27
		{"185.71.76.32", false},
		{"185.71.77.17", true},
		{"185.71.78.1", false},
		{"77.75.153.0", true},
		{"77.75.153.127", true},
		{"77.75.153.128", false}, // just past the /25
		{"77.75.154.128", true},
		{"77.75.154.255", true},
		{"77.75.154.127", false}, // just before the upper /25
		{"77.75.156.11", true},
		{"77.75.156.35", true},
		{"77.75.156.12", false}, // single addresses are /32s, not blocks
		{"127.0.0.1", false},
		{"10.0.0.1", false},
		{"2a02:5180::1", true},
		{"2a02:5180:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"2a02:5181::1", false},
		{"::1", false},
		{"::ffff:185.71.76.5", true},  // IPv4-mapped form of an allowed address
		{"::ffff:127.0.0.1", false},   // and of a disallowed one
		{"fe80::1%eth0", false},       // zones do not help anyone in
		{"2a02:5180::1%eth0", true},   // nor shut an allowed address out
		{"::ffff:77.75.156.35", true}, // mapped single address
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			if got := list.Allowed(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("Allowed(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	t.Run("zero address", func(t *testing.T) {
		t.Parallel()
		if list.Allowed(netip.Addr{}) {
			t.Fatal("the zero Addr is allowed")
		}
	})
	t.Run("nil list", func(t *testing.T) {
		t.Parallel()
		var nilList *yookassa.IPAllowList
		if nilList.Allowed(netip.MustParseAddr("185.71.76.1")) {
			t.Fatal("a nil list allows an address")
		}
	})
}

func TestDefaultIPRangesIsACopy(t *testing.T) {
	t.Parallel()
	r := yookassa.DefaultIPRanges()
	r[0] = "0.0.0.0/0"
	if yookassa.DefaultIPRanges()[0] == "0.0.0.0/0" {
		t.Fatal("changing the returned slice changed the defaults")
	}
}

func TestNewIPAllowList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []string
		allowed []string
		denied  []string
		wantErr string
	}{
		{name: "loopback for a sandbox", entries: []string{"127.0.0.1", "::1"},
			allowed: []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"}, denied: []string{"127.0.0.2"}},
		{name: "spaces trimmed", entries: []string{" 192.0.2.0/24 "}, allowed: []string{"192.0.2.200"}},
		{name: "mapped block is IPv4", entries: []string{"::ffff:192.0.2.0/120"}, allowed: []string{"192.0.2.9"}},
		{name: "empty", entries: nil, wantErr: "no entries"},
		{name: "garbage", entries: []string{"not-an-ip"}, wantErr: `"not-an-ip"`},
		{name: "host bits set", entries: []string{"192.0.2.1/24"}, wantErr: "did you mean 192.0.2.0/24"},
		{name: "bad prefix length", entries: []string{"192.0.2.0/33"}, wantErr: `"192.0.2.0/33"`},
		{name: "empty entry", entries: []string{""}, wantErr: `""`},
		{name: "every problem reported", entries: []string{"x", "127.0.0.1", "y"}, wantErr: `"x" is neither an IP address nor a CIDR block; "y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			list, err := yookassa.NewIPAllowList(tt.entries)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewIPAllowList(%q) error = %v, want one containing %q", tt.entries, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewIPAllowList(%q): %v", tt.entries, err)
			}
			for _, a := range tt.allowed {
				if !list.Allowed(netip.MustParseAddr(a)) {
					t.Errorf("%s not allowed", a)
				}
			}
			for _, a := range tt.denied {
				if list.Allowed(netip.MustParseAddr(a)) {
					t.Errorf("%s allowed", a)
				}
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		remoteAddr string
		headers    map[string][]string
		trust      string
		want       string
		wantErr    bool
	}{
		{name: "remote addr", remoteAddr: "185.71.76.5:44321", want: "185.71.76.5"},
		{name: "remote addr IPv6", remoteAddr: "[2a02:5180::7]:443", want: "2a02:5180::7"},
		{name: "remote addr IPv4-mapped", remoteAddr: "[::ffff:185.71.76.5]:443", want: "185.71.76.5"},
		{name: "spoofed X-Forwarded-For ignored by default", remoteAddr: "203.0.113.9:5555",
			headers: map[string][]string{"X-Forwarded-For": {"185.71.76.5"}}, want: "203.0.113.9"},
		{name: "spoofed X-Real-IP ignored by default", remoteAddr: "203.0.113.9:5555",
			headers: map[string][]string{"X-Real-Ip": {"185.71.76.5"}}, want: "203.0.113.9"},
		{name: "trusted header: right-most wins over a forged left part", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"185.71.76.5, 203.0.113.9"}}, want: "203.0.113.9"},
		{name: "trusted header: single entry", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"185.71.76.5"}}, want: "185.71.76.5"},
		{name: "trusted header: several lines are one list", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"185.71.76.5", "198.51.100.1, 77.75.156.11"}}, want: "77.75.156.11"},
		{name: "trusted header: empty items skipped", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"203.0.113.9, 185.71.76.5, "}}, want: "185.71.76.5"},
		{name: "trusted header: name is case-insensitive", remoteAddr: "10.0.0.2:80", trust: "x-real-ip",
			headers: map[string][]string{"X-Real-Ip": {"185.71.76.5"}}, want: "185.71.76.5"},
		{name: "trusted header: IPv6 with port", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"[2a02:5180::1]:1234"}}, want: "2a02:5180::1"},
		{name: "trusted header: IPv6 in brackets", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"[2a02:5180::1]"}}, want: "2a02:5180::1"},
		{name: "trusted header: IPv4 with port", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"185.71.76.5:999"}}, want: "185.71.76.5"},
		{name: "trusted header missing: no fallback to remote addr", remoteAddr: "185.71.76.5:80",
			trust: "X-Forwarded-For", wantErr: true},
		{name: "trusted header blank", remoteAddr: "185.71.76.5:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {" , "}}, wantErr: true},
		{name: "trusted header garbage", remoteAddr: "10.0.0.2:80", trust: "X-Forwarded-For",
			headers: map[string][]string{"X-Forwarded-For": {"185.71.76.5, unknown"}}, wantErr: true},
		{name: "remote addr garbage", remoteAddr: "pipe", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/webhook/yookassa", nil)
			r.RemoteAddr = tt.remoteAddr
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			got, err := yookassa.ClientIP(r, tt.trust)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ClientIP = %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ClientIP: %v", err)
			}
			if got != netip.MustParseAddr(tt.want) {
				t.Fatalf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}
