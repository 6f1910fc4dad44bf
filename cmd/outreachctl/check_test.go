package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	now := time.Now().UTC()
	ago := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	in := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	blocked := `{"customer_id":"c42","allowed":false,"reasons":[
	  {"code":"recent_contact","message":"called by a.jones (retention) 2h ago, outcome voicemail",
	   "event_id":"e1","at":"` + ago(2*time.Hour) + `","agent":"a.jones","team":"retention","channel":"call","expires_at":"` + in(70*time.Hour) + `"},
	  {"code":"better_offer","message":"offered fiber-500 at 39.00 EUR by mail 9d ago, valid until 2026-12-01",
	   "event_id":"m1","channel":"mail","product":"fiber-500","offer":{"id":"o-39","price":39,"currency":"EUR"}},
	  {"code":"open_complaint","message":"open complaint 77 (owner b.smith) since 3d ago","warning":true,"case_id":"77","owner":"b.smith"}
	],"claim":null}`
	allowed := `{"customer_id":"c42","allowed":true,"reasons":[],"claim":{"token":"tok-1","agent":"b.lee","expires_at":"` + in(15*time.Minute) + `"}}`

	answer := blocked
	srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v1/check" {
			writeJSONResponse(w, 404, `{"error":{"code":"not_found","message":"no such route"}}`)
			return
		}
		writeJSONResponse(w, 200, answer)
	})

	r := runCtl(t, srv.env(), "", "check", "c42", "--channel", "call", "--purpose", "sales", "--agent", "b.lee",
		"--campaign", "autumn", "--product", "fiber-500", "--price", "45", "--currency", "EUR", "--timezone", "Europe/Oslo", "--phone", "+4791234567")
	if r.code != exitOK {
		t.Fatalf("a blocked decision is a successful check: %v", r)
	}
	req := srv.requests()[0]
	if req.contentType != "application/json" {
		t.Errorf("Content-Type = %q", req.contentType)
	}
	var sent map[string]any
	if err := json.Unmarshal(req.body, &sent); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"customer_id": "c42", "channel": "call", "purpose": "sales", "agent": "b.lee", "campaign": "autumn",
		"product": "fiber-500", "timezone": "Europe/Oslo", "phone": "+4791234567",
		"offer": map[string]any{"price": 45.0, "currency": "EUR"}}
	for k, v := range want {
		if got, _ := json.Marshal(sent[k]); string(got) != mustJSON(v) {
			t.Errorf("request %s = %s, want %s", k, got, mustJSON(v))
		}
	}
	if _, ok := sent["claim"]; ok {
		t.Errorf("request has claim without --claim: %s", req.body)
	}
	if _, ok := sent["at"]; ok {
		t.Errorf("request has at without --at: %s", req.body)
	}
	for _, line := range []string{
		"NOT ALLOWED: do not contact c42 by call now (purpose sales): 2 reasons",
		"  recent_contact: called by a.jones (retention) 2h ago, outcome voicemail",
		"      evidence: event e1 at " + now.Add(-2*time.Hour).Format("2006-01-02 15:04 UTC") + " (2h ago), agent a.jones, team retention, channel call",
		"      lapses:   " + now.Add(70*time.Hour).Format("2006-01-02 15:04 UTC") + " (in 2d 22h)",
		"  better_offer: offered fiber-500 at 39.00 EUR by mail 9d ago, valid until 2026-12-01",
		"      evidence: event m1, channel mail, product fiber-500, offer o-39 at 39.00 EUR",
		"  open_complaint (warning; does not block): open complaint 77 (owner b.smith) since 3d ago",
		"      evidence: case 77, owner b.smith",
	} {
		if !strings.Contains(r.stdout, line+"\n") {
			t.Errorf("output has no line %q:\n%s", line, r.stdout)
		}
	}

	// --exit-code: 3 when not allowed, 0 when allowed.
	if r := runCtl(t, srv.env(), "", "check", "c42", "--channel", "call", "--exit-code"); r.code != exitNotAllowed || r.stderr != "" {
		t.Errorf("--exit-code on a blocked decision: %v", r)
	}
	answer = allowed
	r = runCtl(t, srv.env(), "", "check", "c42", "--channel", "call", "--claim", "--exit-code")
	if r.code != exitOK {
		t.Errorf("--exit-code on an allowed decision: %v", r)
	}
	for _, s := range []string{"ALLOWED: c42 may be contacted by call now", "claim: token tok-1, yours until", "(in 15m)"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("output does not say %q:\n%s", s, r.stdout)
		}
	}
	if last := srv.requests()[len(srv.requests())-1]; !strings.Contains(string(last.body), `"claim":true`) {
		t.Errorf("request of --claim = %s", last.body)
	}
	// A planned check: no claim with it.
	r = runCtl(t, srv.env(), "", "check", "c42", "--channel", "call", "--at", in(time.Hour))
	if r.code != exitOK || !strings.Contains(r.stdout, "ALLOWED: c42 may be contacted by call at ") || !strings.Contains(r.stdout, "(in 1h)") {
		t.Errorf("--at an hour ahead: %v", r)
	}
	if last := srv.requests()[len(srv.requests())-1]; !strings.Contains(string(last.body), `"at":"`) {
		t.Errorf("request of --at = %s", last.body)
	}
	if r := runCtl(t, srv.env(), "", "check", "c42", "--channel", "call", "--claim", "--at", in(time.Hour)); r.code != exitUsage || !strings.Contains(r.stderr, "--at") {
		t.Errorf("--claim with a planned --at: %v, want a usage error naming --at", r)
	}

	// --json prints the server's answer.
	r = runCtl(t, srv.env(), "", "check", "c42", "--channel", "call", "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil || got["allowed"] != true {
		t.Errorf("--json: %v (%v)", r, err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestRelative(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{-29 * time.Second, "just now"},
		{-59*time.Minute - 50*time.Second, "1h ago"},
		{-45 * time.Minute, "45m ago"},
		{-(2*time.Hour + 5*time.Minute), "2h 5m ago"},
		{-30 * time.Hour, "30h ago"},
		{70 * time.Hour, "in 2d 22h"},
		{-400 * 24 * time.Hour, "400d ago"},
	} {
		if got := relative(now.Add(tc.d), now); got != tc.want {
			t.Errorf("relative(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
