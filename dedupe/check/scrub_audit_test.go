package check_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// TestScrubIsOneSummaryRecord: a scrub of a list, however many rows and
// batches, leaves one record in the audit trail, its summary, stamped with
// who asked; its rows leave none of their own, and no phone number.
func TestScrubIsOneSummaryRecord(t *testing.T) {
	t.Parallel()
	tr := &trail{}
	e := withTrail(t, tr, false)
	e.apply(t, ev("k1", "contact", "c1", t0.Add(-2*time.Hour)))
	rows := []check.Row{
		{CustomerID: "c1", Phone: "+4791234567"}, // called two hours ago: recent_contact
		{CustomerID: "c2", Phone: "+4791234568"},
		{CustomerID: ""},                      // invalid
		{CustomerID: "c3", Channel: "pigeon"}, // invalid
		{CustomerID: "c4", Phone: "+4791234569"},
	}
	read := 0
	next := func() (check.Row, error) {
		if read == len(rows) {
			return check.Row{}, io.EOF
		}
		read++
		return rows[read-1], nil
	}
	o := check.ScrubOptions{Defaults: dedupe.Request{Channel: contact.Call, Purpose: "sales"}, PolicyName: "live",
		Caller: check.Caller{Role: "marketing", KeyID: "k-77"}, Batch: 2, InFlight: 2}
	emitted := 0
	err := e.svc.Scrub(context.Background(), o, next, func(vs []check.Verdict, end error) error {
		emitted += len(vs)
		return end
	})
	if err != nil || emitted != len(rows) {
		t.Fatalf("Scrub: %v after %d rows, want all %d", err, emitted, len(rows))
	}

	if len(tr.recs) != 1 {
		t.Fatalf("%d records in the audit trail, want one summary: %+v", len(tr.recs), tr.recs)
	}
	r := tr.recs[0]
	if r.Kind != dedupe.RecordScrub || r.CustomerID != "" || r.Request != nil || r.Reasons != nil ||
		r.Role != "marketing" || r.KeyID != "k-77" || r.Instance != "test-1" || r.Policy != "default" || !r.Time.Equal(t0) {
		t.Errorf("record = %+v, want the scrub's summary, stamped, of no one customer", r)
	}
	want := dedupe.ScrubSummary{Rows: 5, Allowed: 2, Invalid: 2, Blocked: map[string]int{dedupe.CodeRecentContact: 1}, Policy: "live"}
	if s := r.Scrub; s == nil || s.Rows != want.Rows || s.Allowed != want.Allowed || s.Invalid != want.Invalid ||
		s.Policy != want.Policy || !maps.Equal(s.Blocked, want.Blocked) {
		t.Errorf("summary = %+v, want %+v", s, want)
	}
	if b, _ := json.Marshal(r); strings.Contains(string(b), "479123456") {
		t.Errorf("the record holds a phone number: %s", b)
	}
}
