package http_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	httpapi "github.com/outreach/outreach/http"
)

// badTimes are RFC 3339 times that no request may carry: outside JSON's
// years 0001-9999 once in UTC, before 1970, or more than 100 years ahead.
var badTimes = map[string]string{
	"year 9999":               "9999-12-31T23:50:00Z",
	"year 9999 end, west":     "9999-12-31T23:59:59-01:00",
	"year 0000":               "0000-01-01T00:00:00Z",
	"year 0001, east":         "0001-01-01T00:30:00+01:00",
	"before 1970":             "1969-12-31T23:59:59Z",
	"over 100 years from now": time.Now().AddDate(101, 0, 0).UTC().Format(time.RFC3339),
}

// TestTimesOutOfRange sends each bad time as every time field of a check,
// a batch and an event, and wants a 400 naming the field, never a 500.
func TestTimesOutOfRange(t *testing.T) {
	ch := &memChecker{facts: map[string]contact.Facts{}}
	p := &memProducer{}
	h := httpapi.New(httpapi.Config{Producer: p, Timelines: &memTimelines{}, Checker: ch, Now: func() time.Time { return now }}).Handler()
	const ok = `{"customer_id":"c1","channel":"call"}`
	for name, bad := range badTimes {
		for _, tt := range []struct {
			name, path, body, field string
			index                   int // -1: none
		}{
			{"check at", "/v1/check", `{"customer_id":"c1","channel":"call","at":"` + bad + `"}`, "at", -1},
			{"check offer", "/v1/check", `{"customer_id":"c1","channel":"call","offer":{"price":1,"expires_at":"` + bad + `"}}`, "offer.expires_at", -1},
			{"batch at", "/v1/check/batch", `{"checks":[` + ok + `,{"customer_id":"c2","channel":"call","claim":true,"at":"` + bad + `"}]}`, "at", 1},
			{"batch offer", "/v1/check/batch", `{"checks":[` + ok + `,` + ok + `,{"customer_id":"c2","channel":"call","offer":{"expires_at":"` + bad + `"}}]}`, "offer.expires_at", 2},
			{"event at", "/v1/events", strings.Replace(validEvent, "2026-11-20T10:00:00Z", bad, 1), "at", 0},
			{"event offer", "/v1/events", `[` + validEvent + `,` + strings.Replace(validEvent, `"channel"`, `"offer":{"expires_at":"`+bad+`"},"channel"`, 1) + `]`, "offer.expires_at", 1},
			{"timeline before", "/v1/customers/c1/contacts?before=" + bad, "", "before", -1},
		} {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				method := "POST"
				if tt.body == "" {
					method = "GET"
				}
				rec, e := do(t, h, method, tt.path, "application/json", tt.body)
				if rec.Code != 400 || e.Error.Field != tt.field {
					t.Fatalf("%d %s, want a 400 naming %s", rec.Code, rec.Body, tt.field)
				}
				if got := indexOf(e); got != tt.index {
					t.Errorf("index %d, want %d", got, tt.index)
				}
			})
		}
	}
	if len(p.events) != 0 {
		t.Errorf("%d events were produced", len(p.events))
	}
}

// TestBatchNeverFailsWhole checks a batch whose times are at the edges of
// the range: every entry is answered, none is a 500.
func TestBatchNeverFailsWhole(t *testing.T) {
	ch := &memChecker{facts: map[string]contact.Facts{}}
	h := httpapi.New(httpapi.Config{Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: ch, Now: func() time.Time { return now }}).Handler()
	edge := time.Now().AddDate(99, 0, 0).UTC().Format(time.RFC3339)
	var checks []string
	for _, at := range []string{"2026-11-20T12:00:00Z", edge, "2026-11-21T12:00:00+14:00"} {
		checks = append(checks, fmt.Sprintf(`{"customer_id":"c1","channel":"call","at":%q,"offer":{"price":2,"expires_at":%q}}`, at, edge))
	}
	rec, _ := do(t, h, "POST", "/v1/check/batch", "application/json", `{"checks":[`+strings.Join(checks, ",")+`]}`)
	if rec.Code != 200 || strings.Count(rec.Body.String(), `"customer_id":"c1"`) != len(checks) {
		t.Fatalf("%d %s, want every check answered", rec.Code, rec.Body)
	}
	// A time in the past is refused by name and index, never a 500.
	past := strings.Replace(checks[0], "2026-11-20T12:00:00Z", "1970-01-01T00:00:00Z", 1)
	if rec, e := do(t, h, "POST", "/v1/check/batch", "application/json", `{"checks":[`+checks[1]+","+past+`]}`); rec.Code != 400 || e.Error.Field != "at" || indexOf(e) != 1 {
		t.Errorf("a check of 1970: %d %s, want 400 naming at and index 1", rec.Code, rec.Body)
	}
}

func indexOf(e apiErr) int {
	if e.Error.Index == nil {
		return -1
	}
	return *e.Error.Index
}
