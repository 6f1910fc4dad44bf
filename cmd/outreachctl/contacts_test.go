package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestContacts(t *testing.T) {
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	day := 24 * time.Hour
	call := `{"id":"k1","type":"contact","customer_id":"c42","at":"` + at(2*time.Hour) + `","channel":"call","direction":"outbound","agent":"a.jones","team":"retention","purpose":"sales","campaign":"autumn","outcome":"no_answer"}`
	mail := `{"id":"m1","type":"contact","customer_id":"c42","at":"` + at(9*day) + `","channel":"mail","direction":"outbound","product":"fiber-500","offer":{"price":39,"currency":"EUR","expires_at":"` + now.Add(20*day).Format(time.RFC3339) + `"}}`
	inbound := `{"id":"i1","type":"contact","customer_id":"c42","at":"` + at(3*day) + `","channel":"chat","direction":"inbound"}`
	bought := `{"id":"p1","type":"purchase","customer_id":"c42","at":"` + at(30*day) + `","product":"tv-basic","price":9.5,"currency":"EUR","order_id":"991"}`
	complaint := `{"id":"x1","type":"complaint","customer_id":"c42","at":"` + at(4*day) + `","case_id":"77","status":"opened","owner":"b.smith","summary":"engineer\u001b never came"}`
	optOut := `{"id":"o1","type":"opt_out","customer_id":"c42","at":"` + at(5*day) + `","reason":"stop\u001b[2J calling"}`
	body := `{"customer_id":"c42","events":[` + strings.Join([]string{call, inbound, complaint, optOut, mail, bought}, ",") + `],
	  "state":{"products":{"tv-basic":` + bought + `},"open_complaints":[` + complaint + `],
	  "opt_outs":{"call":` + optOut + `,"sms":` + optOut + `,"email":` + optOut + `},
	  "offers":[` + mail + `],"last_contacts":{"call":` + call + `,"mail":` + mail + `}},
	  "next":"2026-01-01T00:00:00.000Z"}`
	srv := newFakeServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/customers/c%2F42/contacts" || r.URL.Path == "/v1/customers/nobody/contacts" {
			writeJSONResponse(w, 200, `{"customer_id":"nobody","events":[],"state":{"products":{},"open_complaints":[],"opt_outs":{},"offers":[],"last_contacts":{}}}`)
			return
		}
		writeJSONResponse(w, 200, body)
	})

	r := runCtl(t, srv.env(), "", "contacts", "c42", "--limit", "6")
	if r.code != exitOK {
		t.Fatalf("contacts: %v", r)
	}
	if q := srv.requests()[0]; q.method != "GET" || q.path != "/v1/customers/c42/contacts" || q.query != "limit=6" {
		t.Errorf("request = %s %s?%s", q.method, q.path, q.query)
	}
	// Columns are aligned by spaces; compare words.
	words := regexp.MustCompile(`\s+`)
	var lines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		lines = append(lines, strings.TrimSpace(words.ReplaceAllString(l, " ")))
	}
	out := strings.Join(lines, "\n")
	for _, want := range []string{
		"c42: 6 events, newest first",
		"AT (UTC) TYPE CHANNEL BY DETAIL ID",
		now.Add(-2*time.Hour).Format("2006-01-02 15:04") + " contact call a.jones (retention) sales, campaign autumn, outcome no answer k1",
		" contact in chat - - i1",
		" complaint - b.smith case 77 opened, engineer? never came x1",
		` opt_out all - "stop\x1b[2J calling" o1`,
		" contact mail - fiber-500, offer 39.00 EUR until " + now.Add(20*day).Format("2006-01-02") + " m1",
		" purchase - - tv-basic, 9.50 EUR, order 991 p1",
		"STATE",
		"last contacts call 2h ago by a.jones (retention), outcome no answer",
		"mail 9d ago",
		"purchases tv-basic on " + now.Add(-30*day).Format("2006-01-02") + " (order 991)",
		"open complaints case 77 (owner b.smith) since 4d ago",
		"opted out all since " + now.Add(-5*day).Format("2006-01-02") + `: "stop\x1b[2J calling"`,
		"offers fiber-500 at 39.00 EUR by mail 9d ago, valid until " + now.Add(20*day).Format("2006-01-02"),
		"Older events: outreachctl contacts c42 --before 2026-01-01T00:00:00.000Z",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output has no %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b") {
		t.Errorf("output passes an escape character to the terminal")
	}
	if strings.Count(out, "opted out") != 1 || strings.Count(out, "since "+now.Add(-5*day).Format("2006-01-02")) != 1 {
		t.Errorf("an opt-out of every channel is listed more than once:\n%s", r.stdout)
	}

	r = runCtl(t, srv.env(), "", "contacts", "nobody")
	if r.code != exitOK || !strings.Contains(r.stdout, "nobody has no events.") || !strings.Contains(r.stdout, "purchases        none") {
		t.Errorf("unknown customer: %v", r)
	}
	// A customer id is one escaped path segment.
	if r := runCtl(t, srv.env(), "", "contacts", "c/42"); r.code != exitOK {
		t.Errorf("contacts c/42: %v", r)
	}
}
