package insight_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/insight"
	insightredis "github.com/outreach/outreach/dedupe/insight/redis"
	"github.com/outreach/outreach/internal/testenv"
)

// now is 14:30 today, so that the counters' TTLs are real.
var (
	today = time.Now().UTC().Truncate(24 * time.Hour)
	now   = today.Add(14*time.Hour + 30*time.Minute)
)

func rec(at time.Time, campaign, team string, reasons ...dedupe.RecordReason) dedupe.Record {
	return dedupe.Record{Kind: dedupe.RecordCheck, Time: at, Allowed: len(reasons) == 0,
		Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales", Campaign: campaign, Team: team}, Reasons: reasons}
}

var (
	retention = dedupe.RecordReason{Code: "recent_contact", Campaign: "winback", Team: "retention"}
	webOffer  = dedupe.RecordReason{Code: "better_offer", Team: "web", Product: "fiber-1000"}
	purchase  = dedupe.RecordReason{Code: "already_purchased", Product: "tv-basic"}
)

// service counts the records of a realistic week into the test Redis and
// returns the service over it.
func service(t *testing.T) *insight.Service {
	t.Helper()
	r := testenv.NewRedis(t)
	counters := insightredis.New(r.Client, insightredis.Options{Prefix: r.Prefix, Topic: "decisions", Now: func() time.Time { return now }})
	threeDays := today.Add(-3*24*time.Hour + 10*time.Hour)
	recs := []dedupe.Record{
		rec(threeDays, "autumn", "sales", retention), rec(threeDays.Add(time.Minute), "autumn", "sales", retention),
		rec(threeDays.Add(2*time.Minute), "autumn", "sales", retention, dedupe.RecordReason{Code: "frequency_cap", Campaign: "winback", Team: "retention"}),
		rec(threeDays, "autumn", "sales"), rec(threeDays, "autumn", "sales"),
		rec(today.Add(-time.Hour), "autumn", "web", webOffer),
		rec(today.Add(13*time.Hour), "spring", "retention", purchase),
		rec(today.Add(14*time.Hour+5*time.Minute), "autumn", "sales", retention),
		rec(today.Add(14*time.Hour+6*time.Minute), "", ""),
	}
	var tallies []dedupe.Tally
	for i := range recs {
		tl, ok, err := dedupe.TallyRecord(&recs[i], int64(i))
		if err != nil || !ok {
			t.Fatalf("record %d: %v", i, err)
		}
		tallies = append(tallies, tl)
	}
	if _, err := counters.Count(context.Background(), map[int][]dedupe.Tally{0: tallies[:5], 1: tallies[5:]}); err != nil {
		t.Fatal(err)
	}
	return insight.New(counters, func() time.Time { return now })
}

func report(t *testing.T, s *insight.Service, q insight.Query) *insight.Report {
	t.Helper()
	r, err := s.Report(context.Background(), q)
	if err != nil {
		t.Fatalf("Report(%+v): %v", q, err)
	}
	return r
}

func TestReportByReason(t *testing.T) {
	t.Parallel()
	r := report(t, service(t), insight.Query{})
	if !r.From.Equal(today.Add(-7*24*time.Hour+14*time.Hour)) || !r.To.Equal(today.Add(15*time.Hour)) || r.By != "reason" || r.Step != "day" {
		t.Errorf("range %v–%v by %s step %s, want the last 7 days to the next hour, by reason and day", r.From, r.To, r.By, r.Step)
	}
	if r.Checks != 9 || r.Blocked != 6 {
		t.Errorf("%d checks, %d blocked; want 9 and 6", r.Checks, r.Blocked)
	}
	got := map[string]int64{}
	for _, g := range r.Groups {
		got[g.Key] = g.Blocked
	}
	if want := map[string]int64{"recent_contact": 4, "frequency_cap": 1, "better_offer": 1, "already_purchased": 1}; !maps.Equal(got, want) || r.Groups[0].Key != "recent_contact" {
		t.Errorf("groups = %+v, want %v, most first", r.Groups, want)
	}
	if len(r.Series) != 8 || !r.Series[0].At.Equal(today.Add(-7*24*time.Hour)) {
		t.Fatalf("series of %d from %v, want 8 days from a week ago", len(r.Series), r.Series[0].At)
	}
	if p := r.Series[4]; p.Checks != 5 || p.Blocked != 3 || p.Groups["recent_contact"] != 3 || p.Groups["frequency_cap"] != 1 {
		t.Errorf("three days ago: %+v", p)
	}
	if p := r.Series[7]; p.Checks != 3 || p.Blocked != 2 || p.Groups["already_purchased"] != 1 {
		t.Errorf("today: %+v", p)
	}
}

func TestReportByCampaignNamesCollisions(t *testing.T) {
	t.Parallel()
	r := report(t, service(t), insight.Query{By: "campaign"})
	if len(r.Groups) != 3 {
		t.Fatalf("groups = %+v, want autumn, spring and none", r.Groups)
	}
	autumn := r.Groups[0]
	if autumn.Key != "autumn" || autumn.Checks != 7 || autumn.Blocked != 5 || *autumn.BlockedShare != 0.7143 {
		t.Errorf("autumn = %+v, want 5 of 7 blocked", autumn)
	}
	if !maps.Equal(autumn.Reasons, map[string]int64{"recent_contact": 4, "frequency_cap": 1, "better_offer": 1}) {
		t.Errorf("autumn's reasons = %v", autumn.Reasons)
	}
	if len(autumn.Collisions) != 2 {
		t.Fatalf("autumn's collisions = %+v", autumn.Collisions)
	}
	c := autumn.Collisions[0]
	if c.AgainstCampaign != "winback" || c.AgainstTeam != "retention" || c.Blocked != 4 || c.Mostly != "recent_contact" {
		t.Errorf("autumn's top collision = %+v, want winback/retention: 4 blocked, mostly recent_contact", c)
	}
	if c := autumn.Collisions[1]; c.AgainstTeam != "web" || c.Blocked != 1 || c.Mostly != "better_offer" {
		t.Errorf("autumn's second collision = %+v", c)
	}
	if none := r.Groups[2]; none.Key != "" || none.Checks != 1 || none.Blocked != 0 || *none.BlockedShare != 0 {
		t.Errorf("the checks without a campaign = %+v", none)
	}
}

func TestReportByTeamAndProduct(t *testing.T) {
	t.Parallel()
	s := service(t)
	r := report(t, s, insight.Query{By: "team"})
	sales := r.Groups[0]
	if sales.Key != "sales" || sales.Checks != 6 || sales.Blocked != 4 || len(sales.Collisions) != 1 || sales.Collisions[0].Blocked != 4 {
		t.Errorf("sales = %+v", sales)
	}
	r = report(t, s, insight.Query{By: "product"})
	got := map[string]map[string]int64{}
	for _, g := range r.Groups {
		got[g.Key] = g.Reasons
		if g.Blocked != 1 {
			t.Errorf("%s: %d blocked, want 1", g.Key, g.Blocked)
		}
	}
	if len(got) != 2 || got["fiber-1000"]["better_offer"] != 1 || got["tv-basic"]["already_purchased"] != 1 {
		t.Errorf("products = %v", got)
	}
}

func TestReportByHourAndPartialDays(t *testing.T) {
	t.Parallel()
	s := service(t)
	r := report(t, s, insight.Query{From: now.Add(-24 * time.Hour)})
	if r.Step != "hour" || len(r.Series) != 25 {
		t.Fatalf("step %s with %d points, want 25 hours", r.Step, len(r.Series))
	}
	at := func(h time.Time) insight.Point { return r.Series[int(h.Sub(r.From)/time.Hour)] }
	if p := at(today.Add(-time.Hour)); p.Blocked != 1 || p.Groups["better_offer"] != 1 {
		t.Errorf("23:00 yesterday: %+v", p)
	}
	if p := at(today.Add(14 * time.Hour)); p.Checks != 2 || p.Blocked != 1 {
		t.Errorf("14:00 today: %+v", p)
	}

	// The default range, 7 days to now (14:30), widened to whole hours,
	// may be read by the hour.
	if r := report(t, s, insight.Query{Step: "hour"}); r.Step != "hour" || len(r.Series) != 7*24+1 {
		t.Errorf("the last 7 days by the hour: step %s with %d points, want %d hours", r.Step, len(r.Series), 7*24+1)
	}

	// From noon yesterday to 13:00 today, by the day: the edge days are read
	// by the hour, and 13:00 is left out.
	r = report(t, s, insight.Query{From: today.Add(-12 * time.Hour), To: today.Add(13 * time.Hour), Step: "day"})
	if r.Checks != 1 || r.Blocked != 1 || len(r.Series) != 2 || r.Series[0].Blocked != 1 || r.Series[1].Checks != 0 {
		t.Errorf("noon to 13:00: %d checks, %d blocked, series %+v; want only 23:00 yesterday", r.Checks, r.Blocked, r.Series)
	}
}

func TestReportNamesTheBadField(t *testing.T) {
	t.Parallel()
	s := insight.New(nil, func() time.Time { return now })
	for _, tc := range []struct {
		name  string
		q     insight.Query
		field string
	}{
		{"from before the retention", insight.Query{From: now.Add(-91 * 24 * time.Hour)}, "from"},
		{"from after to", insight.Query{From: now.Add(-time.Hour), To: now.Add(-2 * time.Hour)}, "from"},
		{"an empty range", insight.Query{From: now.Add(-time.Hour), To: now.Add(-time.Hour)}, "from"},
		{"an unknown by", insight.Query{By: "agent"}, "by"},
		{"an unknown step", insight.Query{Step: "week"}, "step"},
		{"hours over a month", insight.Query{From: now.Add(-30 * 24 * time.Hour), Step: "hour"}, "step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Report(context.Background(), tc.q)
			var ce *contact.Error
			if !errors.As(err, &ce) || ce.Code != contact.EInvalid || ce.Field != tc.field {
				t.Errorf("Report: %v, want invalid %s", err, tc.field)
			}
		})
	}
}

func TestReportFailsWhenTheStoreDoes(t *testing.T) {
	t.Parallel()
	s := insight.New(failing{}, func() time.Time { return now })
	if _, err := s.Report(context.Background(), insight.Query{}); contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("Report: %v, want unavailable", err)
	}
}

type failing struct{}

func (failing) Read(context.Context, string, []dedupe.InsightDay) ([]dedupe.InsightCell, error) {
	return nil, contact.Unavailable("redis", errors.New("down"))
}
