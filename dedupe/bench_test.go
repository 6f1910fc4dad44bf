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
// complaint and three opt events.
func loadFacts(tb testing.TB) *dedupe.Facts {
	tb.Helper()
	data, err := os.ReadFile("testdata/history.json")
	if err != nil {
		tb.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		tb.Fatal(err)
	}
	f := &dedupe.Facts{Timezone: "Europe/Berlin"}
	h := &f.History
	for _, r := range raw {
		e, err := contact.Decode(r)
		if err != nil {
			tb.Fatal(err)
		}
		switch e.Type {
		case contact.TypeContact:
			h.Contacts = append(h.Contacts, e)
			if e.Offer != nil {
				h.Offers = append(h.Offers, e)
			}
		case contact.TypePurchase:
			h.Purchases = append(h.Purchases, e)
		case contact.TypeComplaint:
			h.Complaints = append(h.Complaints, e)
		case contact.TypeOptOut, contact.TypeOptIn:
			h.Opts = append(h.Opts, e)
		}
	}
	return f
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
		facts   *dedupe.Facts
		reasons string
	}{
		{"allowed", dedupe.Request{Product: "broadband-1000", Offer: &contact.Offer{Price: price(49), Currency: "EUR"}}, facts, ""},
		{"blocked", dedupe.Request{Product: "broadband-500", Offer: &contact.Offer{Price: price(45), Currency: "EUR"}}, &claimed,
			"claimed,already_purchased,better_offer"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			req := tt.req
			req.CustomerID, req.Channel, req.Agent, req.At = "c-1042", contact.Call, "dialer-3", benchAt
			if err := req.Normalize(benchAt); err != nil {
				b.Fatal(err)
			}
			if got := codes(dedupe.Decide(p, &req, tt.facts)); got != tt.reasons {
				b.Fatalf("reasons = %q, want %q", got, tt.reasons)
			}
			b.ReportAllocs()
			for b.Loop() {
				dedupe.Decide(p, &req, tt.facts)
			}
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	p := dedupe.DefaultPolicy()
	facts := loadFacts(b)
	req := dedupe.Request{CustomerID: "c-1042", Channel: contact.Call, Product: "broadband-1000",
		Offer: &contact.Offer{Price: price(49), Currency: "EUR"}, At: benchAt}
	if err := req.Normalize(benchAt); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dedupe.Decide(p, &req, facts)
		}
	})
}
