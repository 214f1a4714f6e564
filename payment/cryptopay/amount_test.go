package cryptopay_test

import (
	"math"
	"testing"

	"wgbot/payment/cryptopay"
)

func TestParseAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount   string
		decimals int
		want     int64
		wantErr  bool
	}{
		{"2.19", 2, 219, false},
		{"199", 2, 19900, false},
		{"2.5", 2, 250, false},
		{"2.190000", 2, 219, false}, // trailing zeros lose nothing
		{"0.00000001", 8, 1, false}, // one satoshi
		{"1", 0, 1, false},
		{"1.000000000000000001", 18, 1000000000000000001, false},
		{"9.223372036854775807", 18, math.MaxInt64, false},
		{"9.223372036854775808", 18, 0, true}, // past int64
		{"2.195", 2, 0, true},                 // would need rounding
		{"1.5", 0, 0, true},
		{"-1", 2, 0, true},
		{"1e2", 2, 0, true},
		{"", 2, 0, true},
		{".5", 2, 0, true},
		{"5.", 2, 0, true},
		{"1", -1, 0, true},
		{"1", 19, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.amount, func(t *testing.T) {
			t.Parallel()
			got, err := cryptopay.ParseAmount(tt.amount, tt.decimals)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseAmount(%q, %d) = %d, want an error", tt.amount, tt.decimals, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseAmount(%q, %d) = %d, %v; want %d", tt.amount, tt.decimals, got, err, tt.want)
			}
		})
	}
}

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		minor    int64
		decimals int
		want     string
	}{
		{219, 2, "2.19"},
		{5, 2, "0.05"},
		{0, 2, "0.00"},
		{150, 2, "1.50"},
		{7, 0, "7"},
		{1, 8, "0.00000001"},
		{math.MaxInt64, 18, "9.223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			got, err := cryptopay.FormatAmount(tt.minor, tt.decimals)
			if err != nil || got != tt.want {
				t.Fatalf("FormatAmount(%d, %d) = %q, %v; want %q", tt.minor, tt.decimals, got, err, tt.want)
			}
			back, err := cryptopay.ParseAmount(got, tt.decimals)
			if err != nil || back != tt.minor {
				t.Fatalf("round trip of %d gave %d, %v", tt.minor, back, err)
			}
		})
	}
	if _, err := cryptopay.FormatAmount(-1, 2); err == nil {
		t.Fatal("FormatAmount accepted a negative amount")
	}
}
