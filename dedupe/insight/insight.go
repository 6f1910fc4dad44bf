// Package insight tells where collisions come from: which campaigns and
// teams keep running into which, and which reasons stop them. It is the use
// case between the HTTP API and the counters that the aggregator of the
// decisions topic keeps (see dedupe.TallyRecord for what is counted).
package insight

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// Store reads insight counters; dedupe/insight/redis.Counters is one.
type Store interface {
	// Read returns the counters of family on each of days, summed over
	// the store's shards. EUnavailable when they cannot be read.
	Read(ctx context.Context, family string, days []dedupe.InsightDay) ([]dedupe.InsightCell, error)
}

// What a report groups by.
const (
	ByReason   = "reason"
	ByCampaign = "campaign"
	ByTeam     = "team"
	ByProduct  = "product"
)

// Steps of a report's series.
const (
	StepHour = "hour"
	StepDay  = "day"
)

// Limits of a query.
const (
	DefaultRange   = 7 * 24 * time.Hour // when from is not given
	HourlyUpTo     = 3 * 24 * time.Hour // the default step is an hour up to this range, a day beyond
	MaxHourlyRange = 7 * 24 * time.Hour // the longest range with a step of an hour
)

// Query asks for a report. Zero values take the defaults.
type Query struct {
	From time.Time // default: To minus DefaultRange, or the oldest kept
	To   time.Time // default and at most: now
	By   string    // ByReason (the default), ByCampaign, ByTeam or ByProduct
	Step string    // StepHour or StepDay; default: an hour up to HourlyUpTo
}

// Report is where the blocked checks of a range come from. Times are
// whole hours, From included and To not.
type Report struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	By      string    `json:"by"`
	Step    string    `json:"step"`
	Checks  int64     `json:"checks"`
	Blocked int64     `json:"blocked"`
	// Groups holds one entry per value of By, most blocked first.
	Groups []Group `json:"groups"`
	// Series holds every step of the range, oldest first.
	Series []Point `json:"series"`
}

// Group is what one reason, campaign, team or product counts. Key is empty
// for checks that named no campaign, team or product.
type Group struct {
	Key     string `json:"key"`
	Checks  int64  `json:"checks,omitempty"` // campaign and team: the checks that named it
	Blocked int64  `json:"blocked"`
	// BlockedShare is Blocked / Checks (campaign and team).
	BlockedShare *float64 `json:"blocked_share,omitempty"`
	// Reasons counts blocked checks by reason code; a check blocked for
	// two reasons counts under both.
	Reasons map[string]int64 `json:"reasons,omitempty"`
	// Collisions (campaign and team) are the campaigns and teams whose
	// contacts blocked this group's checks, most first.
	Collisions []Collision `json:"collisions,omitempty"`
}

// Collision counts the checks of a group blocked by the contacts of another
// campaign or team: "campaign autumn-upgrade × team retention: 412 blocked,
// mostly recent_contact".
type Collision struct {
	AgainstCampaign string           `json:"against_campaign"`
	AgainstTeam     string           `json:"against_team"`
	Blocked         int64            `json:"blocked"`
	Reasons         map[string]int64 `json:"reasons"`
	Mostly          string           `json:"mostly"` // the reason code that blocked most of them
}

// Point is one step of the series: its checks, blocked checks, and
// blocked checks by group key.
type Point struct {
	At      time.Time        `json:"at"`
	Checks  int64            `json:"checks"`
	Blocked int64            `json:"blocked"`
	Groups  map[string]int64 `json:"groups"`
}

// Service answers insight queries. It is safe for concurrent use.
type Service struct {
	store Store
	now   func() time.Time
}

// New returns a Service over store; now is the clock (nil: time.Now).
func New(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Report answers q. Errors: EInvalid naming the query field at fault,
// EUnavailable when the counters cannot be read.
func (s *Service) Report(ctx context.Context, q Query) (*Report, error) {
	q, err := s.normalize(q)
	if err != nil {
		return nil, err
	}
	r := &Report{From: q.From, To: q.To, By: q.By, Step: q.Step, Groups: []Group{}}
	step := time.Hour
	start := q.From
	if q.Step == StepDay {
		step, start = 24*time.Hour, day(q.From)
	}
	for at := start; at.Before(q.To); at = at.Add(step) {
		r.Series = append(r.Series, Point{At: at, Groups: map[string]int64{}})
	}
	b := builder{r: r, start: start, step: step, groups: map[string]*Group{}, collisions: map[[3]string]*Collision{}}
	families := map[string][]string{
		ByReason: {dedupe.FamilyReason}, ByProduct: {dedupe.FamilyReason, dedupe.FamilyProduct},
		ByCampaign: {dedupe.FamilyReason, dedupe.FamilyCampaign, dedupe.FamilyCollision},
		ByTeam:     {dedupe.FamilyReason, dedupe.FamilyTeam, dedupe.FamilyCollision},
	}[q.By]
	plan := readPlan(q)
	for _, family := range families {
		cells, err := s.store.Read(ctx, family, plan)
		if err != nil {
			return nil, err
		}
		for _, c := range cells {
			if c.At.Before(q.From) || !c.At.Before(q.To) {
				continue // an hour of an edge day outside the range
			}
			if k, ok := dedupe.ParseInsightField(family, c.Field); ok {
				b.add(family, k, c)
			}
		}
	}
	b.finish()
	return r, nil
}

// normalize applies the defaults to q, aligns its range on whole hours and
// checks it.
func (s *Service) normalize(q Query) (Query, error) {
	now := s.now().UTC()
	oldest := now.Add(-dedupe.InsightRetention).Truncate(time.Hour)
	if q.To.IsZero() || q.To.After(now) {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-DefaultRange)
		if q.From.Before(oldest) {
			q.From = oldest
		}
	}
	if !q.From.Before(q.To) {
		return q, contact.Invalid("from", "must be before to (%s); got %s", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	}
	span := q.To.Sub(q.From) // as asked, before it is widened to whole hours
	q.From, q.To = q.From.UTC().Truncate(time.Hour), ceilHour(q.To.UTC())
	if q.From.Before(oldest) {
		return q, contact.Invalid("from", "must lie within the last %d days, for which counters are kept; got %s",
			int(dedupe.InsightRetention.Hours()/24), q.From.Format(time.RFC3339))
	}
	if q.By == "" {
		q.By = ByReason
	}
	if !slices.Contains([]string{ByReason, ByCampaign, ByTeam, ByProduct}, q.By) {
		return q, contact.Invalid("by", "must be reason, campaign, team or product; got %q", contact.Clip(q.By))
	}
	switch {
	case q.Step == "" && span <= HourlyUpTo:
		q.Step = StepHour
	case q.Step == "":
		q.Step = StepDay
	case q.Step != StepHour && q.Step != StepDay:
		return q, contact.Invalid("step", "must be hour or day; got %q", contact.Clip(q.Step))
	case q.Step == StepHour && span > MaxHourlyRange:
		return q, contact.Invalid("step", "hour is for ranges of up to %d days; this one is %d hours: use day", int(MaxHourlyRange.Hours()/24), int(span.Hours()))
	}
	return q, nil
}

// readPlan lists the days of q's range: the day totals of those wholly
// inside it, and the hours of the others. A series by the hour reads the
// hours of every day.
func readPlan(q Query) []dedupe.InsightDay {
	var plan []dedupe.InsightDay
	for d := day(q.From); d.Before(q.To); d = d.Add(24 * time.Hour) {
		whole := !d.Before(q.From) && !d.Add(24*time.Hour).After(q.To)
		plan = append(plan, dedupe.InsightDay{Day: d, Hourly: q.Step == StepHour || !whole})
	}
	return plan
}

func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

func ceilHour(t time.Time) time.Time {
	if h := t.Truncate(time.Hour); !h.Equal(t) {
		return h.Add(time.Hour)
	}
	return t
}

// builder sums cells into a report.
type builder struct {
	r          *Report
	start      time.Time
	step       time.Duration
	groups     map[string]*Group
	collisions map[[3]string]*Collision // group key, against campaign, against team
}

func (b *builder) point(at time.Time) *Point {
	i := int(at.Sub(b.start) / b.step)
	return &b.r.Series[min(max(i, 0), len(b.r.Series)-1)]
}

func (b *builder) group(key string) *Group {
	g, ok := b.groups[key]
	if !ok {
		g = &Group{Key: key, Reasons: map[string]int64{}}
		b.groups[key] = g
	}
	return g
}

func (b *builder) add(family string, k dedupe.InsightKey, c dedupe.InsightCell) {
	p := b.point(c.At)
	switch family {
	case dedupe.FamilyReason:
		switch k.What {
		case dedupe.CountChecks:
			p.Checks += c.N
			b.r.Checks += c.N
		case dedupe.CountBlocked:
			p.Blocked += c.N
			b.r.Blocked += c.N
		default:
			if b.r.By == ByReason {
				b.group(k.What).Blocked += c.N
				p.Groups[k.What] += c.N
			}
		}
	case dedupe.FamilyCampaign, dedupe.FamilyTeam, dedupe.FamilyProduct:
		g := b.group(k.Value)
		switch k.What {
		case dedupe.CountChecks:
			g.Checks += c.N
		case dedupe.CountBlocked:
			g.Blocked += c.N
			p.Groups[k.Value] += c.N
		default:
			g.Reasons[k.What] += c.N
		}
	case dedupe.FamilyCollision:
		key := k.Campaign
		if b.r.By == ByTeam {
			key = k.Team
		}
		ck := [3]string{key, k.AgainstCampaign, k.AgainstTeam}
		col, ok := b.collisions[ck]
		if !ok {
			col = &Collision{AgainstCampaign: k.AgainstCampaign, AgainstTeam: k.AgainstTeam, Reasons: map[string]int64{}}
			b.collisions[ck] = col
		}
		col.Blocked += c.N
		col.Reasons[k.What] += c.N
	}
}

// finish sorts the groups and their collisions, most blocked first, and
// works out shares and the main reason of each collision.
func (b *builder) finish() {
	for ck, col := range b.collisions {
		col.Mostly = mostly(col.Reasons)
		g := b.group(ck[0])
		g.Collisions = append(g.Collisions, *col)
	}
	for _, g := range b.groups {
		if g.Checks > 0 {
			share := math.Round(float64(g.Blocked)/float64(g.Checks)*10000) / 10000
			g.BlockedShare = &share
		}
		if len(g.Reasons) == 0 {
			g.Reasons = nil
		}
		slices.SortFunc(g.Collisions, func(x, y Collision) int {
			return cmp.Or(cmp.Compare(y.Blocked, x.Blocked), cmp.Compare(x.AgainstTeam, y.AgainstTeam), cmp.Compare(x.AgainstCampaign, y.AgainstCampaign))
		})
		b.r.Groups = append(b.r.Groups, *g)
	}
	slices.SortFunc(b.r.Groups, func(x, y Group) int {
		return cmp.Or(cmp.Compare(y.Blocked, x.Blocked), cmp.Compare(y.Checks, x.Checks), cmp.Compare(x.Key, y.Key))
	})
}

// mostly returns the code with the greatest count, the first by name on a
// tie.
func mostly(reasons map[string]int64) string {
	best := ""
	for code, n := range reasons {
		if best == "" || n > reasons[best] || n == reasons[best] && code < best {
			best = code
		}
	}
	return best
}
