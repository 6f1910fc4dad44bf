package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/insight"
	insightredis "github.com/outreach/outreach/dedupe/insight/redis"
	httpapi "github.com/outreach/outreach/http"
	"github.com/outreach/outreach/internal/testenv"
)

// insightsNow is the clock of the insights tests: real, so that the
// counters' TTLs are.
var insightsNow = time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)

// insightsServer counts a few check records, one of them with a hostile
// campaign name, and serves insights from them.
func insightsServer(t *testing.T, keys *httpapi.Keys) http.Handler {
	t.Helper()
	r := testenv.NewRedis(t)
	counters := insightredis.New(r.Client, insightredis.Options{Prefix: r.Prefix, Topic: "decisions", Now: func() time.Time { return insightsNow }})
	check := func(at time.Time, campaign string, reasons ...dedupe.RecordReason) dedupe.Record {
		return dedupe.Record{Kind: dedupe.RecordCheck, Time: at, Allowed: len(reasons) == 0, Reasons: reasons,
			Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales", Campaign: campaign, Team: "sales"}}
	}
	recent := dedupe.RecordReason{Code: "recent_contact", Team: "retention", Campaign: "winback"}
	recs := []dedupe.Record{
		check(insightsNow.Add(-2*time.Hour), "autumn-upgrade", recent), check(insightsNow.Add(-2*time.Hour), "autumn-upgrade", recent),
		check(insightsNow.Add(-26*time.Hour), "autumn-upgrade", dedupe.RecordReason{Code: "better_offer", Team: "web", Product: "fiber-1000"}),
		check(insightsNow.Add(-time.Hour), "autumn-upgrade"),
		check(insightsNow.Add(-time.Hour), `<script>alert(1)</script>`, dedupe.RecordReason{Code: "claimed", Team: `"><img src=x>`}),
	}
	var tallies []dedupe.Tally
	for i := range recs {
		tl, _, err := dedupe.TallyRecord(&recs[i], int64(i))
		if err != nil {
			t.Fatal(err)
		}
		tallies = append(tallies, tl)
	}
	if _, err := counters.Count(context.Background(), map[int][]dedupe.Tally{0: tallies}); err != nil {
		t.Fatal(err)
	}
	return httpapi.New(httpapi.Config{Keys: keys, Insights: insight.New(counters, func() time.Time { return insightsNow }),
		Now: func() time.Time { return insightsNow }}).Handler()
}

func TestInsightsAPI(t *testing.T) {
	h := insightsServer(t, keysFor(t, "marketing", "admin", "agent", "dialer"))
	rec := send(t, h, "GET", "/v1/insights?by=campaign&from=7d", "marketing-key", "")
	if rec.Code != 200 {
		t.Fatalf("GET /v1/insights: %d %s", rec.Code, rec.Body)
	}
	var got insight.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.By != "campaign" || got.Step != "day" || got.Checks != 5 || got.Blocked != 4 || len(got.Groups) != 2 {
		t.Fatalf("report = %+v", got)
	}
	autumn := got.Groups[0]
	if autumn.Key != "autumn-upgrade" || autumn.Checks != 4 || autumn.Blocked != 3 || len(autumn.Collisions) != 2 ||
		autumn.Collisions[0].AgainstTeam != "retention" || autumn.Collisions[0].Blocked != 2 || autumn.Collisions[0].Mostly != "recent_contact" {
		t.Errorf("autumn-upgrade = %+v", autumn)
	}
	for role, want := range map[string]int{"admin": 200, "agent": 403, "dialer": 403, "": 401} {
		key := role + "-key"
		if role == "" {
			key = ""
		}
		if rec := send(t, h, "GET", "/v1/insights", key, ""); rec.Code != want {
			t.Errorf("%q: %d, want %d", role, rec.Code, want)
		}
	}
	if rec := send(t, httpapi.New(httpapi.Config{}).Handler(), "GET", "/v1/insights", "", ""); rec.Code != 404 {
		t.Errorf("a server without insights: %d, want 404", rec.Code)
	}
}

func TestInsightsAPINamesTheBadParameter(t *testing.T) {
	h := insightsServer(t, nil)
	for _, tc := range []struct{ query, field string }{
		{"from=yesterday", "from"},
		{"to=2026-13-01", "to"},
		{"from=100d", "from"},
		{"from=1h&to=2h", "from"},
		{"by=agent", "by"},
		{"step=week", "step"},
		{"from=30d&step=hour", "step"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			rec := send(t, h, "GET", "/v1/insights?"+tc.query, "", "")
			var body struct {
				Error struct{ Code, Message, Field string }
			}
			json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != 400 || body.Error.Code != "invalid" || body.Error.Field != tc.field || body.Error.Message == "" {
				t.Errorf("%d %s, want 400 naming %s", rec.Code, rec.Body, tc.field)
			}
		})
	}
}

func TestInsightsPage(t *testing.T) {
	h := insightsServer(t, keysFor(t, "marketing", "agent"))
	page := func(path, key string) (int, string) {
		t.Helper()
		rec := send(t, h, "GET", path, key, "")
		return rec.Code, rec.Body.String()
	}
	rec := send(t, h, "GET", "/insights?range=30d", "", "")
	body := pageHTML(t, rec, 200)
	pageWant(t, body, `data-auth="on"`, `data-range="30d"`, `<option value="30d" selected>`, `<script src="/assets/insights.js?v=`)
	if strings.Contains(body, "autumn-upgrade") {
		t.Errorf("the open shell shows data")
	}
	if code, _ := page("/insights/panel", ""); code != 401 {
		t.Errorf("the panel without a key: %d, want 401", code)
	}
	if code, _ := page("/insights/panel", "agent-key"); code != 403 {
		t.Errorf("the panel with an agent key: %d, want 403", code)
	}

	body = pageHTML(t, send(t, h, "GET", "/insights/panel?range=7d", "marketing-key", ""), 200)
	pageWant(t, body, "Last 7 days", `<dd>5</dd>`, `<dd>4</dd>`, `<dd>80%</dd>`,
		`<svg class="chart"`, `class="seg seg-recent_contact"`, `Contacted recently <span class="muted">2</span>`,
		`campaign <strong>autumn-upgrade</strong> × team retention <span class="muted">(campaign winback)</span>`,
		`<td class="num">2</td>`, `recent_contact<span class="mostly-label">Contacted recently</span>`,
		`<th scope="row">autumn-upgrade</th><td class="num">4</td><td class="num">3</td>`, `<span>75%</span>`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`)
	if strings.Contains(body, "<script>alert") || strings.Contains(body, `"><img`) {
		t.Errorf("the panel does not escape a campaign or team name")
	}

	body = pageHTML(t, send(t, h, "GET", "/insights/panel?range=24h", "marketing-key", ""), 200)
	pageWant(t, body, "Last 24 hours", `<dd>4</dd>`) // the better offer was 26 hours ago
	if code, body := page("/insights/panel?range=1y", "marketing-key"); code != 400 || !strings.Contains(body, "range") {
		t.Errorf("an unknown range: %d %s", code, body)
	}
	if rec := send(t, h, "GET", "/assets/insights.js", "", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), "outreach.insights.key") {
		t.Errorf("insights.js: %d", rec.Code)
	}
}

func TestInsightsPageOutage(t *testing.T) {
	h := httpapi.New(httpapi.Config{Insights: insight.New(downStore{}, nil)}).Handler()
	body := pageHTML(t, send(t, h, "GET", "/insights/panel", "", ""), 503)
	pageWant(t, body, "The insights cannot be read right now", `data-action="retry"`)
	if rec := send(t, h, "GET", "/v1/insights", "", ""); rec.Code != 503 {
		t.Errorf("the API during an outage: %d, want 503", rec.Code)
	}
}

type downStore struct{}

func (downStore) Read(context.Context, string, []dedupe.InsightDay) ([]dedupe.InsightCell, error) {
	return nil, contact.Unavailable("redis", errors.New("down"))
}
