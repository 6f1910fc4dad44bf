package contact_test

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/internal/contacttest"
)

var t0 = contacttest.T0

// TestStateIsIndependentOfOrderAndRedelivery: any order of the same events,
// with any of them delivered again, gives the same state.
func TestStateIsIndependentOfOrderAndRedelivery(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		events := contacttest.GenHistory(t)
		var want contact.State
		for i := range events {
			want.Apply(&events[i], t0, contact.Limits{})
		}
		again := rapid.Permutation(events).Draw(t, "order")
		again = append(again, rapid.SliceOfN(rapid.SampledFrom(append(events, contact.Event{ID: "none"})), 0, 10).Draw(t, "redelivered")...)
		var got contact.State
		for i := range again {
			if again[i].ID != "none" {
				got.Apply(&again[i], t0, contact.Limits{})
			}
		}
		if g, w := contacttest.Describe(got), contacttest.Describe(want); g != w {
			t.Fatalf("states differ:\n got %s\nwant %s", g, w)
		}
	})
}

func TestBindingFactsOutliveLaterOnes(t *testing.T) {
	t.Parallel()
	var s contact.State
	apply := func(e contact.Event) {
		t.Helper()
		if err := e.Normalize(contact.Defaults{}); err != nil {
			t.Fatal(err)
		}
		s.Apply(&e, t0, contact.Limits{})
	}
	// An opt-out of every channel, then opt-ins for one channel only.
	apply(contact.Event{ID: "o1", Type: contact.TypeOptOut, CustomerID: "c", At: t0.Add(-400 * 24 * time.Hour)})
	for i := range 50 {
		apply(contact.Event{ID: fmt.Sprint("i", i), Type: contact.TypeOptIn, CustomerID: "c", At: t0.Add(-time.Duration(i) * time.Hour), Channel: contact.Email})
	}
	if _, ok := s.OptOutInForce(contact.Call); !ok {
		t.Error("an opt-out of every channel no longer binds calls after opt-ins for email")
	}
	if _, ok := s.OptOutInForce(contact.Email); ok {
		t.Error("a later opt-in for email does not lift the opt-out for email")
	}
	// A complaint opened long ago stays open until resolved.
	apply(contact.Event{ID: "x1", Type: contact.TypeComplaint, CustomerID: "c", CaseID: "77", At: t0.Add(-420 * 24 * time.Hour)})
	if len(s.OpenComplaints()) != 1 {
		t.Fatalf("open complaints = %v", s.OpenComplaints())
	}
	apply(contact.Event{ID: "x2", Type: contact.TypeComplaint, CustomerID: "c", CaseID: "77", Status: contact.ComplaintResolved, At: t0.Add(-420 * 24 * time.Hour)})
	if len(s.OpenComplaints()) != 0 {
		t.Error("a case resolved the instant it opened is still open")
	}
}
