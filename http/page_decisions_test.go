package http_test

import (
	"context"
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
