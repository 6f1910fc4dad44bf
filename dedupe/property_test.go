package dedupe_test

import (
	"encoding/json"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/internal/contacttest"
)

// TestSameEventsSameDecision: any order of the same events, with any of them
// delivered again, gives the same decision, evidence and all.
func TestSameEventsSameDecision(t *testing.T) {
	at := contacttest.T0
	p := dedupe.DefaultPolicy()
	rapid.Check(t, func(t *rapid.T) {
		events := contacttest.GenHistory(t)
		other := rapid.Permutation(events).Draw(t, "order")
		if len(events) > 0 {
			other = append(other, rapid.SliceOfN(rapid.SampledFrom(events), 0, 10).Draw(t, "redelivered")...)
		}
		var a, b contact.Facts
		for i := range events {
			a.State.Apply(&events[i], at, contact.Limits{})
		}
		for i := range other {
			b.State.Apply(&other[i], at, contact.Limits{})
		}
		req := dedupe.Request{
			CustomerID: "c1",
			Channel:    contact.Channels[rapid.IntRange(0, len(contact.Channels)-1).Draw(t, "channel")],
			Purpose:    rapid.SampledFrom(contact.Purposes).Draw(t, "purpose"),
			Product:    "p",
			Offer:      &contact.Offer{Price: &contact.Money{Minor: int64(rapid.IntRange(0, 600).Draw(t, "price")), Currency: "EUR"}},
			Timezone:   "Europe/Oslo",
			At:         at.Add(time.Duration(rapid.IntRange(0, 96).Draw(t, "hours")) * time.Hour),
		}
		if err := req.Normalize(at, contact.Defaults{}); err != nil {
			t.Fatal(err)
		}
		da, db := dedupe.Decide(p, &req, &a, at), dedupe.Decide(p, &req, &b, at)
		ja, _ := json.Marshal(da)
		jb, _ := json.Marshal(db)
		if string(ja) != string(jb) {
			t.Fatalf("decisions differ:\n%s\n%s", ja, jb)
		}
	})
}
