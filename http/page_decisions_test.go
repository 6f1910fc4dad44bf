package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	httpapi "github.com/outreach/outreach/http"
)

// memDecisions is a DecisionReader over fixed records, newest first, that
// remembers what it was asked.
type memDecisions struct {
	recs     []dedupe.Record
	err      error
	gotID    string
	gotSince time.Time
	gotLimit int
}

func (m *memDecisions) Decisions(_ context.Context, id string, since time.Time, limit int) ([]dedupe.Record, bool, error) {
	m.gotID, m.gotSince, m.gotLimit = id, since, limit
	if m.err != nil {
		return nil, false, m.err
	}
	return m.recs, false, nil
}

func newDecisionsPage(t *testing.T, d httpapi.DecisionReader) http.Handler {
	t.Helper()
	return httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &pageStore{events: pageHistory(now)}, Checker: &memChecker{facts: map[string]contact.Facts{}},
		Decisions: d, Now: func() time.Time { return now },
	}).Handler()
}

var pageTags = regexp.MustCompile(`<[^>]+>`)

// decisionLines returns the text of each line of the panel's last checks,
// the relative time kept and the absolute one dropped.
func decisionLines(t *testing.T, body string) []string {
	t.Helper()
	i := strings.Index(body, `data-testid="decisions"`)
	if i < 0 {
		t.Fatalf("the panel shows no last checks")
	}
	list := body[i : i+strings.Index(body[i:], "</ul>")]
	list = regexp.MustCompile(`<span class="abs">[^<]*</span>`).ReplaceAllString(list, "")
	var lines []string
	for _, li := range strings.Split(list, "<li>")[1:] {
		lines = append(lines, strings.Join(strings.Fields(pageTags.ReplaceAllString(li, "")), " "))
	}
	return lines
}

// TestPagePanelShowsLastDecisions proves that the agent page reads the
// customer's last checks of the day from the audit trail and tells each
// as "checked 4m ago by dialer for campaign autumn: blocked, recent_contact":
// the agent when there is one, else the role; blocking codes only, each
// once; scrub and erasure records left out.
func TestPagePanelShowsLastDecisions(t *testing.T) {
	d := &memDecisions{recs: []dedupe.Record{
		{Kind: dedupe.RecordCheck, Time: now.Add(-4 * time.Minute), Role: "dialer", CustomerID: "c42",
			Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales", Campaign: "autumn"},
			Reasons: []dedupe.RecordReason{{Code: dedupe.CodeRecentContact, EventIDs: []string{"c2"}}, {Code: dedupe.CodeRecentContact, EventIDs: []string{"ch1"}},
				{Code: dedupe.CodeOpenComplaint, Warning: true}}},
		{Kind: dedupe.RecordScrub, Time: now.Add(-10 * time.Minute), Role: "marketing", Scrub: &dedupe.ScrubSummary{Rows: 3}},
		{Kind: dedupe.RecordCheck, Time: now.Add(-2 * time.Hour), Role: "agent", CustomerID: "c42", Allowed: true,
			Request: &dedupe.RecordRequest{Channel: contact.Email, Purpose: "service", Agent: "a.jones"}},
		{Kind: dedupe.RecordErasure, Time: now.Add(-3 * time.Hour), Role: "admin", CustomerID: "c42"},
	}}
	rec, _ := do(t, newDecisionsPage(t, d), "GET", "/customers/c42/panel", "", "")
	body := pageHTML(t, rec, 200)

	want := []string{
		"checked 4m ago by dialer for campaign autumn: blocked, recent_contact",
		"checked 2h ago by a.jones: allowed",
	}
	if got := decisionLines(t, body); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("last checks =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d.gotID != "c42" || !d.gotSince.Equal(now.Add(-24*time.Hour)) || d.gotLimit != 5 {
		t.Errorf("read the audit trail for %q since %v, limit %d; want c42 since a day ago, limit 5", d.gotID, d.gotSince, d.gotLimit)
	}
}

// TestPagePanelDecisionsUnavailable proves that an audit trail that cannot
// be read leaves the last checks out and the rest of the panel whole.
func TestPagePanelDecisionsUnavailable(t *testing.T) {
	for name, d := range map[string]httpapi.DecisionReader{
		"unreadable": &memDecisions{err: contact.Unavailable("kafka", errors.New("no brokers"))},
		"none kept":  nil,
		"empty":      &memDecisions{},
	} {
		t.Run(name, func(t *testing.T) {
			rec, _ := do(t, newDecisionsPage(t, d), "GET", "/customers/c42/panel", "", "")
			body := pageHTML(t, rec, 200)
			pageWant(t, body, "CS-4471", `data-testid="last"`)
			if strings.Contains(body, `data-testid="decisions"`) {
				t.Errorf("the panel shows last checks it does not have")
			}
		})
	}
}

// TestGetDecisions: GET /v1/customers/{id}/decisions reads the customer's
// records since the given age, at most limit of them, and names a bad
// query value; a server without an audit trail says so with a 404.
func TestGetDecisions(t *testing.T) {
	d := &memDecisions{recs: []dedupe.Record{{Kind: dedupe.RecordCheck, Time: now.Add(-time.Minute), CustomerID: "c42", Role: "dialer",
		Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales"}, Reasons: []dedupe.RecordReason{{Code: dedupe.CodeRecentContact, EventIDs: []string{"c2"}}}}}}
	h := newDecisionsPage(t, d)
	rec, _ := do(t, h, "GET", "/v1/customers/c42/decisions?since=2h&limit=3", "", "")
	var got struct {
		CustomerID string `json:"customer_id"`
		Since      time.Time
		Decisions  []dedupe.Record
		Partial    bool
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if d.gotID != "c42" || !d.gotSince.Equal(now.Add(-2*time.Hour)) || d.gotLimit != 3 {
		t.Errorf("read for %q since %v, limit %d; want c42 since 2h ago, limit 3", d.gotID, d.gotSince, d.gotLimit)
	}
	if got.CustomerID != "c42" || !got.Since.Equal(now.Add(-2*time.Hour)) || len(got.Decisions) != 1 ||
		got.Decisions[0].Reasons[0].EventIDs[0] != "c2" || got.Partial {
		t.Errorf("answer = %s", rec.Body)
	}
	if rec, _ := do(t, h, "GET", "/v1/customers/c42/decisions", "", ""); rec.Code != 200 || !d.gotSince.Equal(now.Add(-24*time.Hour)) || d.gotLimit != 50 {
		t.Errorf("defaults: %d, since %v, limit %d; want a day and 50", rec.Code, d.gotSince, d.gotLimit)
	}
	for _, q := range []struct{ query, field string }{{"since=91d", "since"}, {"since=-1h", "since"}, {"limit=0", "limit"}, {"limit=501", "limit"}} {
		if rec, e := do(t, h, "GET", "/v1/customers/c42/decisions?"+q.query, "", ""); rec.Code != 400 || e.Error.Field != q.field {
			t.Errorf("?%s: %d %+v, want a 400 naming %s", q.query, rec.Code, e.Error, q.field)
		}
	}
	if rec, _ := do(t, newDecisionsPage(t, nil), "GET", "/v1/customers/c42/decisions", "", ""); rec.Code != 404 {
		t.Errorf("without an audit trail: %d, want 404", rec.Code)
	}
}
