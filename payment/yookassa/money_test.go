package yookassa_test

import (
	"math"
	"testing"

	"wgbot/payment/yookassa"
)

func TestParseMinor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value   string
		want    int64
		wantErr bool
	}{
		{value: "100.00", want: 10000},
		{value: "100", want: 10000},
		{value: "100.5", want: 10050},
		{value: "0.01", want: 1},
		{value: "0.10", want: 10},
		{value: "007.00", want: 700},
		{value: "1.2300", want: 123}, // zeros past the second place lose nothing
		{value: "92233720368547758.07", want: math.MaxInt64},
		{value: "92233720368547758.08", wantErr: true}, // one kopeck past int64
		{value: "1.001", wantErr: true},                // would need rounding
		{value: "-1.00", wantErr: true},
		{value: "+1.00", wantErr: true},
		{value: "1e3", wantErr: true},
		{value: "1,00", wantErr: true},
		{value: " 1.00", wantErr: true},
		{value: "1.", wantErr: true},
		{value: ".5", wantErr: true},
		{value: ".", wantErr: true},
		{value: "", wantErr: true},
		{value: "1.0.0", wantErr: true},
		{value: "NaN", wantErr: true},
		{value: "١٠٠", wantErr: true}, // non-ASCII digits
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			got, err := yookassa.ParseMinor(tt.value)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseMinor(%q) = %d, want an error", tt.value, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMinor(%q): %v", tt.value, err)
			}
			if got != tt.want {
				t.Fatalf("ParseMinor(%q) = %d, want %d", tt.value, got, tt.want)
			}
		})
	}
}

func TestFormatMinor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		minor int64
		want  string
	}{
		{0, "0.00"},
		{1, "0.01"},
		{10, "0.10"},
		{99, "0.99"},
		{100, "1.00"},
		{19900, "199.00"},
		{-150, "-1.50"},
		{math.MaxInt64, "92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := yookassa.FormatMinor(tt.minor); got != tt.want {
				t.Fatalf("FormatMinor(%d) = %q, want %q", tt.minor, got, tt.want)
			}
			if tt.minor < 0 {
				return // ParseMinor refuses negative amounts by design
			}
			back, err := yookassa.ParseMinor(tt.want)
			if err != nil || back != tt.minor {
				t.Fatalf("ParseMinor(FormatMinor(%d)) = %d, %v; want the input back", tt.minor, back, err)
			}
		})
	}
}

func TestAmountMinorRoundTrip(t *testing.T) {
	t.Parallel()
	a := yookassa.AmountFromMinor(19900, "RUB")
	if a != (yookassa.Amount{Value: "199.00", Currency: "RUB"}) {
		t.Fatalf("AmountFromMinor(19900, RUB) = %+v", a)
	}
	got, err := a.Minor()
	if err != nil || got != 19900 {
		t.Fatalf("Minor() = %d, %v; want 19900", got, err)
	}
}
