package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestLoadRejectsNonsense(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want []string // every variable the error must name
	}{
		{"pool min above max", map[string]string{"DB_POOL_MIN": "20", "DB_POOL_MAX": "5"}, []string{"DB_POOL_MIN"}},
		{"pool max below one", map[string]string{"DB_POOL_MAX": "0"}, []string{"DB_POOL_MAX"}},
		{"lock id not an integer", map[string]string{"DB_IP_ALLOC_LOCK_ID": "abc"}, []string{"DB_IP_ALLOC_LOCK_ID"}},
		{"host bits in the subnet", map[string]string{"WG_SUBNET": "10.8.0.1/24"}, []string{"WG_SUBNET"}},
		{"IPv6 prefix too small for the IPv4 hosts", map[string]string{"WG_SUBNET": "10.8.0.0/16", "WG_SUBNET6": "fd42::/120"}, []string{"WG_SUBNET6"}},
		{"endpoint without a port", map[string]string{"WG_ENDPOINT": "vpn.example.com"}, []string{"WG_ENDPOINT"}},
		{"half a YooKassa setup", map[string]string{"YOOKASSA_SHOP_ID": "1"}, []string{"YOOKASSA_SHOP_ID"}},
		{"YooKassa without a return URL", map[string]string{"YOOKASSA_SHOP_ID": "1", "YOOKASSA_SECRET_KEY": "k"}, []string{"YOOKASSA_RETURN_URL"}},
		{"YooKassa return URL not a URL", map[string]string{"YOOKASSA_SHOP_ID": "1", "YOOKASSA_SECRET_KEY": "k", "YOOKASSA_RETURN_URL": "t.me/mybot"}, []string{"YOOKASSA_RETURN_URL"}},
		{"YooKassa receipts switch", map[string]string{"YOOKASSA_RECEIPTS": "maybe"}, []string{"YOOKASSA_RECEIPTS"}},
		{"YooKassa VAT code", map[string]string{"YOOKASSA_VAT_CODE": "13"}, []string{"YOOKASSA_VAT_CODE"}},
		{"YooKassa tax system", map[string]string{"YOOKASSA_TAX_SYSTEM_CODE": "7"}, []string{"YOOKASSA_TAX_SYSTEM_CODE"}},
		{"several at once", map[string]string{"DB_POOL_MAX": "x", "WG_APPLY_MODE": "both", "MASTER_KEY": "s3cr3t-value", "LOG_LEVEL": "loud"},
			[]string{"DB_POOL_MAX", "WG_APPLY_MODE", "MASTER_KEY", "LOG_LEVEL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.vars), os.DevNull)
			if !IsConfigError(err) {
				t.Fatalf("want a settings error, got %v", err)
			}
			for _, name := range tt.want {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error does not name %s: %v", name, err)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
}

func TestDefaultsAndEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wgbot.env")
	os.WriteFile(path, []byte("WG_INTERFACE=wg7\nDB_POOL_MAX=7\nBOT_TOKEN=from-file\n"), 0o600)
	s, err := Load(env(map[string]string{"DB_POOL_MAX": "9"}), path)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case s.DBPoolMin != 2 || s.DBPoolMax != 9:
		t.Errorf("pool %d..%d: the environment must win over the file", s.DBPoolMin, s.DBPoolMax)
	case s.WGConfigPath != "/etc/wireguard/wg7.conf" || s.WGConfigLockPath != "/etc/wireguard/wg7.conf.lock":
		t.Errorf("paths %s, %s", s.WGConfigPath, s.WGConfigLockPath)
	case s.BotToken != "from-file":
		t.Errorf("token from the file not read")
	case s.WGAddressQuarantine != 24*time.Hour:
		// A freed address rests, so a stale config cannot reach its next user.
		t.Errorf("WG_ADDRESS_QUARANTINE defaults to %v, want 24h", s.WGAddressQuarantine)
	}
	for _, line := range s.Redacted() {
		if strings.Contains(line, "from-file") {
			t.Errorf("Redacted shows the token: %s", line)
		}
	}
}

// TestSupportContactWarning (issue 17, item 6): without SUPPORT_CONTACT
// the settings warn, naming /paysupport; with it they do not.
func TestSupportContactWarning(t *testing.T) {
	s, err := Load(env(map[string]string{}), "")
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "SUPPORT_CONTACT") || !strings.Contains(w[0], "/paysupport") {
		t.Errorf("warnings without SUPPORT_CONTACT: %q", w)
	}
	s, err = Load(env(map[string]string{"SUPPORT_CONTACT": "@acme_support"}), "")
	if err != nil || len(s.Warnings()) != 0 {
		t.Errorf("warnings with SUPPORT_CONTACT: %q, %v", s.Warnings(), err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/db":         "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db?password=pw&x=1": "postgres://u@h/db?password=xxxxx&x=1",
		"postgres://h/db":                   "postgres://h/db",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
