package dedupe_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// loadFacts reads testdata/history.json, a customer's timeline: 20 contacts
// over two months, four of them with offers, three purchases, a resolved
// complaint and three opt events, and merges it into the customer's state,
// with a profile in Berlin.
func loadFacts(tb testing.TB) *contact.Facts {
	tb.Helper()
	data, err := os.ReadFile("testdata/history.json")
	if err != nil {
		tb.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		tb.Fatal(err)
	}
	f := with(contact.Facts{}, profile("Europe/Berlin"))
	for _, r := range raw {
		e, err := contact.Decode(r, contact.Defaults{})
		if err != nil {
			tb.Fatal(err)
		}
		f.State.Apply(&e, benchAt, contact.Limits{})
	}
	return &f
}

var benchAt = time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)

func BenchmarkDecide(b *testing.B) {
	p := dedupe.DefaultPolicy()
	facts := loadFacts(b)
	claimed := *facts
	claimed.Claim = &dedupe.Claim{Agent: "dialer-7", Campaign: "spring", ExpiresAt: benchAt.Add(10 * time.Minute)}
	tests := []struct {
		name    string
		req     dedupe.Request
		facts   *contact.Facts
		reasons string
	}{
		{"allowed", dedupe.Request{Product: "broadband-1000", Offer: &contact.Offer{Price: eur(49)}}, facts, ""},
		{"blocked", dedupe.Request{Product: "broadband-500", Offer: &contact.Offer{Price: eur(45)}}, &claimed,
			"claimed,already_purchased,better_offer"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			req := tt.req
			req.CustomerID, req.Channel, req.Agent, req.At = "c-1042", contact.Call, "dialer-3", benchAt
			if err := req.Normalize(benchAt, contact.Defaults{}); err != nil {
				b.Fatal(err)
			}
			if got := codes(dedupe.Decide(p, &req, tt.facts, benchAt)); got != tt.reasons {
				b.Fatalf("reasons = %q, want %q", got, tt.reasons)
			}
			b.ReportAllocs()
			for b.Loop() {
				dedupe.Decide(p, &req, tt.facts, benchAt)
			}
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	p := dedupe.DefaultPolicy()
	facts := loadFacts(b)
	req := dedupe.Request{CustomerID: "c-1042", Channel: contact.Call, Product: "broadband-1000",
		Offer: &contact.Offer{Price: eur(49)}, At: benchAt}
	if err := req.Normalize(benchAt, contact.Defaults{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dedupe.Decide(p, &req, facts, benchAt)
		}
	})
}
