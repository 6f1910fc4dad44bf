package http

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/insight"
)

// InsightReporter answers where collisions come from;
// dedupe/insight.Service is one.
type InsightReporter interface {
	// Report answers q: EInvalid naming the query field at fault,
	// EUnavailable when the counters cannot be read.
	Report(ctx context.Context, q insight.Query) (*insight.Report, error)
}

// insightsTimeout bounds the read of a report.
const insightsTimeout = 10 * time.Second

// registerInsights registers GET /v1/insights and the insights page: a
// shell without data (GET /insights) whose script loads the report
// fragment with a marketing or admin key (GET /insights/panel).
func (s *Server) registerInsights() {
	s.echo.GET("/v1/insights", s.insights, s.authorize(RoleMarketing))
	s.echo.GET("/insights", s.pageInsights)
	s.echo.GET("/insights/panel", s.pageInsightsPanel, s.authorize(RoleMarketing))
}

// insights answers GET /v1/insights?from=&to=&by=&step=.
func (s *Server) insights(c echo.Context) error {
	if s.cfg.Insights == nil {
		return contact.Errorf(contact.ENotFound, "this server keeps no insights")
	}
	now := s.cfg.Now()
	q := insight.Query{By: c.QueryParam("by"), Step: c.QueryParam("step")}
	var err error
	if q.From, err = timeParam(c, "from", now); err != nil {
		return err
	}
	if q.To, err = timeParam(c, "to", now); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), insightsTimeout)
	defer cancel()
	r, err := s.cfg.Insights.Report(ctx, q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// timeParam reads the query parameter name: an RFC 3339 time, or a
// duration before now such as 24h or 7d. Absent, it is the zero time.
func timeParam(c echo.Context, name string, now time.Time) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := dedupe.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, contact.Invalid(name, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, or a duration before now such as 24h or 7d; got %q", contact.Clip(v))
	}
	return t, nil
}

// insightRange is a range the page offers. The ranges of days are whole
// days, today included, so that every bar of the chart is a whole day.
type insightRange struct {
	Value, Label string
	days         int // 0: the last 24 hours, by the hour
}

var insightRanges = []insightRange{{"24h", "Last 24 hours", 0}, {"7d", "Last 7 days", 7}, {"30d", "Last 30 days", 30}, {"90d", "Last 90 days", 90}}

// findInsightRange returns the range named v; an unknown or empty v is the
// last 7 days, and ok false.
func findInsightRange(v string) (insightRange, bool) {
	i := slices.IndexFunc(insightRanges, func(r insightRange) bool { return r.Value == v })
	if i < 0 {
		return insightRanges[1], false
	}
	return insightRanges[i], true
}

func (r insightRange) from(now time.Time) time.Time {
	if r.days == 0 {
		return now.Add(-24 * time.Hour)
	}
	return now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1-r.days)
}

// insightsShellView is the data of the insights page shell: none.
type insightsShellView struct {
	Auth     bool
	Ranges   []insightRange
	Range    string
	AssetCSS string
	AssetJS  string
}

func (s *Server) pageInsights(c echo.Context) error {
	r, _ := findInsightRange(c.QueryParam("range"))
	return s.renderHTML(c, http.StatusOK, "insights-page", insightsShellView{
		Auth: s.cfg.Keys != nil, Ranges: insightRanges, Range: r.Value,
		AssetCSS: assetURL("page.css"), AssetJS: assetURL("insights.js"),
	})
}

// pageInsightsPanel renders the report fragment of a range: blocked checks
// over time by reason, the top collisions, and each campaign's share of
// blocked checks.
func (s *Server) pageInsightsPanel(c echo.Context) error {
	if s.cfg.Insights == nil {
		return s.renderInsightsError(c, contact.Errorf(contact.ENotFound, "this server keeps no insights"))
	}
	rg, ok := findInsightRange(c.QueryParam("range"))
	if !ok && c.QueryParam("range") != "" {
		return s.renderInsightsError(c, contact.Invalid("range", "must be one of 24h, 7d, 30d or 90d"))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), insightsTimeout)
	defer cancel()
	from := rg.from(s.cfg.Now())
	byReason, err := s.cfg.Insights.Report(ctx, insight.Query{From: from, By: insight.ByReason})
	if err != nil {
		return s.renderInsightsError(c, err)
	}
	byCampaign, err := s.cfg.Insights.Report(ctx, insight.Query{From: from, By: insight.ByCampaign})
	if err != nil {
		return s.renderInsightsError(c, err)
	}
	return s.renderHTML(c, http.StatusOK, "insights-panel", newInsightsView(rg, byReason, byCampaign))
}

// renderInsightsError shows err in place of the report.
func (s *Server) renderInsightsError(c echo.Context, err error) error {
	if contact.ErrorCode(err) != contact.EUnavailable {
		return s.renderPageError(c, err)
	}
	s.log.Warn("page: unable to read the insights", "error", err)
	return s.renderHTML(c, http.StatusServiceUnavailable, "alert", alertView{Kind: "outage", Retry: true,
		Title: "The insights cannot be read right now", Message: "The store is unavailable. Try again in a moment."})
}

// insightsView is the data of the report fragment.
type insightsView struct {
	Range      string // "Last 7 days"
	From, To   stamp
	Checks     int64
	Blocked    int64
	Share      string // "38%"
	Chart      chartView
	Series     []seriesRow // the chart's numbers, as a table
	Collisions []collisionView
	Campaigns  []campaignView
}

type seriesRow struct {
	When    string
	Checks  int64
	Blocked int64
	Reasons string // "recent_contact 8, claimed 1"
}

// collisionView is a row of the top collisions: "campaign autumn-upgrade ×
// team retention: 412 blocked, mostly recent_contact".
type collisionView struct {
	Campaign    string // the requesting campaign; empty for checks without one
	Against     string // "team retention", "campaign winback"
	AgainstMore string // the evidence's campaign beside its team
	Blocked     int64
	Mostly      string // the reason code
	MostlyLabel string
}

// campaignView is a row of the blocked shares.
type campaignView struct {
	Campaign string
	Checks   int64
	Blocked  int64
	Share    string  // "45%"
	Bar      float64 // the share's bar width, 0-100
}

// topCollisions is how many collisions the page lists.
const topCollisions = 10

func newInsightsView(rg insightRange, byReason, byCampaign *insight.Report) insightsView {
	v := insightsView{Range: rg.Label, From: newStamp(byReason.From, byReason.From), To: newStamp(byReason.To, byReason.To),
		Checks: byReason.Checks, Blocked: byReason.Blocked, Share: percent(byReason.Blocked, byReason.Checks)}
	v.Chart = newChart(byReason)
	for _, p := range byReason.Series {
		row := seriesRow{When: stepLabel(p.At, byReason.Step), Checks: p.Checks, Blocked: p.Blocked}
		var parts []string
		for _, code := range codesOf(p.Groups) {
			parts = append(parts, fmt.Sprintf("%s %d", code, p.Groups[code]))
		}
		row.Reasons = strings.Join(parts, ", ")
		v.Series = append(v.Series, row)
	}
	for _, g := range byCampaign.Groups {
		for _, col := range g.Collisions {
			cv := collisionView{Campaign: g.Key, Blocked: col.Blocked, Mostly: col.Mostly, MostlyLabel: reasonLabel(col.Mostly)}
			cv.Against = "campaign " + col.AgainstCampaign
			if col.AgainstTeam != "" {
				cv.Against = "team " + col.AgainstTeam
				if col.AgainstCampaign != "" {
					cv.AgainstMore = "campaign " + col.AgainstCampaign
				}
			}
			v.Collisions = append(v.Collisions, cv)
		}
		if g.Checks > 0 {
			v.Campaigns = append(v.Campaigns, campaignView{Campaign: g.Key, Checks: g.Checks, Blocked: g.Blocked,
				Share: percent(g.Blocked, g.Checks), Bar: float64(g.Blocked) / float64(g.Checks) * 100})
		}
	}
	slices.SortStableFunc(v.Collisions, func(a, b collisionView) int { return cmp.Compare(b.Blocked, a.Blocked) })
	v.Collisions = v.Collisions[:min(len(v.Collisions), topCollisions)]
	slices.SortStableFunc(v.Campaigns, func(a, b campaignView) int {
		return cmp.Or(cmp.Compare(b.Bar, a.Bar), cmp.Compare(b.Checks, a.Checks))
	})
	return v
}

func percent(n, of int64) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", float64(n)/float64(of)*100)
}

func reasonLabel(code string) string {
	if l := reasonLabels[code]; l != "" {
		return l
	}
	return code
}

// stepLabel names a point of the series: "Mon 23 Nov" or "23 Nov 14:00".
func stepLabel(at time.Time, step string) string {
	if step == insight.StepDay {
		return at.UTC().Format("Mon 2 Jan")
	}
	return at.UTC().Format("2 Jan 15:04")
}
