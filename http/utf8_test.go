package http_test

import (
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	httpapi "github.com/outreach/outreach/http"
)

// TestInvalidUTF8IsRejected sends invalid UTF-8 in every kind of input and
// wants a 400 naming the field, and nothing stored or produced.
func TestInvalidUTF8IsRejected(t *testing.T) {
	p := &memProducer{}
	ch := &memChecker{facts: map[string]contact.Facts{}}
	h := httpapi.New(httpapi.Config{Producer: p, Timelines: &memTimelines{}, Checker: ch, Now: func() time.Time { return now }}).Handler()
	const bad = "a\xffb"
	const ok = `{"customer_id":"c1","channel":"call"}`
	for _, tt := range []struct {
		name, method, path, body, field string
		index                           int
	}{
		{"check agent", "POST", "/v1/check", `{"customer_id":"c1","channel":"call","agent":"` + bad + `"}`, "agent", -1},
		{"check offer id", "POST", "/v1/check", `{"customer_id":"c1","channel":"call","offer":{"id":"` + bad + `"}}`, "offer.id", -1},
		{"check customer", "POST", "/v1/check", `{"customer_id":"` + bad + `","channel":"call"}`, "customer_id", -1},
		{"check unknown field", "POST", "/v1/check", `{"customer_id":"c1","channel":"call","note":"` + bad + `"}`, "note", -1},
		{"check name", "POST", "/v1/check", `{"customer_id":"c1","channel":"call","` + bad + `":1}`, "", -1},
		{"batch product", "POST", "/v1/check/batch", `{"checks":[` + ok + `,{"customer_id":"c1","channel":"call","product":"` + bad + `"}]}`, "product", 1},
		{"event", "POST", "/v1/events", strings.Replace(validEvent, `"call"`, `"call","agent":"`+bad+`"`, 1), "agent", 0},
		{"second event", "POST", "/v1/events", "[" + validEvent + "," + strings.Replace(validEvent, `"c1"`, `"`+bad+`"`, 1) + "]", "customer_id", 1},
		{"path id", "GET", "/v1/customers/a%FFb/contacts", "", "customer_id", -1},
		{"query", "GET", "/v1/customers/c1/contacts?before=%FF", "", "before", -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, e := do(t, h, tt.method, tt.path, "application/json", tt.body)
			if rec.Code != 400 || e.Error.Field != tt.field || indexOf(e) != tt.index {
				t.Fatalf("%d %s, want a 400 naming %q at index %d", rec.Code, rec.Body, tt.field, tt.index)
			}
			if !strings.Contains(e.Error.Message, "UTF-8") && tt.name != "query" {
				t.Errorf("message %q does not say UTF-8", e.Error.Message)
			}
		})
	}
	if len(p.events) != 0 || len(ch.got) != 0 {
		t.Errorf("produced %d events and checked %d requests", len(p.events), len(ch.got))
	}
}

// TestSuppressionUploadRejectsInvalidUTF8 wants the line and the column of
// invalid UTF-8 anywhere in an upload, ignored columns included, and the
// list unchanged.
func TestSuppressionUploadRejectsInvalidUTF8(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	for _, tt := range []struct{ name, body, message string }{
		{"reason", "customer_id,reason\nd1,ok\nd2,a\xffb\n", "line 3: reason: must be valid UTF-8"},
		{"customer id", "customer_id\n\xc3\x28\n", "line 2: customer_id: must be valid UTF-8"},
		{"ignored column", "customer_id,note\nd1,\xff\n", "line 2: note: must be valid UTF-8"},
		{"header", "customer_id,n\xffte\nd1,x\n", "line 1: the header must be valid UTF-8"},
	} {
		for _, method := range []string{"PUT", "POST"} {
			rec, e := do(t, env.h, method, "/v1/suppressions/dnc", "text/csv", tt.body)
			if rec.Code != 400 || e.Error.Field != "list" || !strings.Contains(e.Error.Message, tt.message) {
				t.Errorf("%s %s: %d %+v, want 400 with %q", method, tt.name, rec.Code, e.Error, tt.message)
			}
		}
	}
	if got := dncLists(t, env, "d1", ""); got != "" {
		t.Errorf("d1 is suppressed after failed uploads: %q", got)
	}
	if rec, e := do(t, env.h, "PUT", "/v1/suppressions/dnc?reason=%FF", "text/csv", "customer_id\nd1\n"); rec.Code != 400 || e.Error.Field != "reason" {
		t.Errorf("a default reason of invalid UTF-8: %d %+v", rec.Code, e.Error)
	}
}
