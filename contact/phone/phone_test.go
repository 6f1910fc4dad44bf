package phone_test

import (
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/outreach/outreach/contact/phone"
)

func parser(t *testing.T, region string) *phone.Parser {
	t.Helper()
	p, err := phone.NewParser(region)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	no, gb := parser(t, "NO"), parser(t, "GB")
	tests := []struct {
		p    *phone.Parser
		in   string
		want string // "" means invalid
	}{
		{no, "+4791234567", "+4791234567"},
		{no, "+47 912 34 567", "+4791234567"},
		{no, "912 34 567", "+4791234567"},
		{no, "0047 91234567", "+4791234567"},
		{no, " (+47) 912-34-567 ", "+4791234567"},
		{no, "+44 20 7946 0018", "+442079460018"},
		{no, "+44 (0)20 7946 0018", "+442079460018"},
		{no, "+4402079460018", "+442079460018"},
		{gb, "020 7946 0018", "+442079460018"},
		{gb, "44", ""},
		{no, "", ""},
		{no, "   ", ""},
		{no, "12", ""},
		{no, "+47 1234", ""},
		{no, "call me", ""},
		{no, strings.Repeat("9", 65), ""},
	}
	for _, tt := range tests {
		got, err := tt.p.Normalize(tt.in)
		if tt.want == "" {
			if _, ok := err.(*phone.Error); !ok {
				t.Errorf("Normalize(%q) = %q, %v; want a *phone.Error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		// A normalised number is its own normal form, also to a parser
		// that has not seen it (and so parses it again).
		if again, err := parser(t, "US").Normalize(got); err != nil || again != got {
			t.Errorf("Normalize(%q) = %q, %v; want it unchanged", got, again, err)
		}
	}
}

// TestNormalFormIsStable: libphonenumber reads the E.164 form it makes of
// some numbers with legacy prefixes as another number. Normalize goes on
// until the form is stable, so that every spelling gives one number, in
// every region.
func TestNormalFormIsStable(t *testing.T) {
	t.Parallel()
	regions := []string{"NO", "MX", "BY", "US", "GB", "DE", "IN", "AR"}
	rapid.Check(t, func(t *rapid.T) {
		raw := rapid.StringMatching(`\+?[0-9]{4,14}`).Draw(t, "raw")
		region := rapid.SampledFrom(regions).Draw(t, "region")
		p, _ := phone.NewParser(region)
		got, err := p.Normalize(raw)
		if err != nil {
			return
		}
		other, _ := phone.NewParser(rapid.SampledFrom(regions).Draw(t, "other"))
		if again, err := other.Normalize(got); err != nil || again != got {
			t.Fatalf("Normalize(%q) in %s = %q, but %q reads again as %q, %v", raw, region, got, got, again, err)
		}
	})
}

func TestZone(t *testing.T) {
	t.Parallel()
	tests := []struct{ number, want string }{
		{"+4791234567", "Europe/Oslo"},
		{"+442079460018", "Europe/London"},
		{"+12125550100", "America/New_York"}, // New York's area code has one zone
		{"+1800555010", ""},                  // toll-free: every US zone
		{"4791234567", ""},                   // not E.164
	}
	for _, tt := range tests {
		got, ok := phone.Zone(tt.number)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Zone(%s) = %q, %v; want %q", tt.number, got, ok, tt.want)
		}
	}
}

func TestRegion(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"no", "XX", "", "NOR"} {
		if phone.ValidRegion(r) == nil {
			t.Errorf("ValidRegion(%q) = nil, want an error", r)
		}
	}
	if _, err := phone.NewParser("GB"); err != nil {
		t.Error(err)
	}
}
