package contact_test

import (
	"testing"

	"github.com/outreach/outreach/contact"
)

func TestParseMoney(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount, currency string
		minor            int64 // -1: invalid
	}{
		{"39.90", "EUR", 3990},
		{"39.9", "EUR", 3990},
		{"39", "EUR", 3900},
		{"0", "EUR", 0},
		{"0.00", "EUR", 0},
		{"4.5e1", "EUR", 4500},
		{"45E-1", "EUR", 450},
		{"1e2", "JPY", 100},
		{"4500", "JPY", 4500},
		{"45.5", "JPY", -1},
		{"1.234", "BHD", 1234}, // three decimals
		{"1.2345", "BHD", -1},
		{"39.999", "EUR", -1},
		{"39.990", "EUR", 3999}, // trailing zeros are exact
		{"-1", "EUR", -1},
		{"1e31", "EUR", -1},
		{"1e-31", "EUR", -1},
		{"999999999999999999", "JPY", 999999999999999999},
		{"9999999999999999999", "JPY", -1},
		{"", "EUR", -1},
		{".5", "EUR", -1},
		{"5.", "EUR", -1},
		{"0x10", "EUR", -1},
		{"5", "ABC", -1},
		{"5", "eur", -1},
		{"5", "XXX", -1},
	}
	for _, tt := range tests {
		m, err := contact.ParseMoney("price", tt.amount, "currency", tt.currency)
		if tt.minor < 0 {
			if contact.ErrorCode(err) != contact.EInvalid {
				t.Errorf("ParseMoney(%q, %s) = %v, %v; want invalid", tt.amount, tt.currency, m, err)
			}
			continue
		}
		if err != nil || m.Minor != tt.minor || m.Currency != tt.currency {
			t.Errorf("ParseMoney(%q, %s) = %v, %v; want %d", tt.amount, tt.currency, m, err, tt.minor)
		}
		// Decimal round-trips.
		again, err := contact.ParseMoney("price", m.Decimal(), "currency", m.Currency)
		if err != nil || again != m {
			t.Errorf("ParseMoney(%q) = %v, %v; want %v", m.Decimal(), again, err, m)
		}
	}
}

func TestMoneyString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		m    contact.Money
		want string
	}{
		{contact.Money{Minor: 3990, Currency: "EUR"}, "39.90 EUR"},
		{contact.Money{Minor: 5, Currency: "EUR"}, "0.05 EUR"},
		{contact.Money{Minor: 4500, Currency: "JPY"}, "4500 JPY"},
		{contact.Money{Minor: 1234, Currency: "BHD"}, "1.234 BHD"},
	} {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestMoneyOfDifferentCurrenciesIsNeverCompared(t *testing.T) {
	t.Parallel()
	eur := contact.Money{Minor: 100, Currency: "EUR"}
	sek := contact.Money{Minor: 5000, Currency: "SEK"}
	if _, ok := eur.Less(sek); ok {
		t.Error("EUR and SEK compared")
	}
	if less, ok := eur.Less(contact.Money{Minor: 200, Currency: "EUR"}); !ok || !less {
		t.Error("1.00 EUR is not less than 2.00 EUR")
	}
}
