package main

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/dedupe/check"
)

// outreach_followups_due is counted when /metrics is scraped, at most every
// followUpsEvery; past maxTeamLabels teams, the teams with the fewest are
// summed under otherTeams, to bound the series.
const (
	followUpsEvery = 10 * time.Second
	maxTeamLabels  = 100
	otherTeams     = "(other)"
)

// followUpsCollector serves outreach_followups_due. Every replica counts
// the same index: aggregate with max, not sum.
type followUpsCollector struct {
	svc  *check.Service
	log  *slog.Logger
	desc *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts map[string]int64
}

func newFollowUpsCollector(svc *check.Service, log *slog.Logger) *followUpsCollector {
	return &followUpsCollector{svc: svc, log: log, desc: prometheus.NewDesc("outreach_followups_due",
		"Open complaints whose follow-up is due, by the complaint's team (the same on every replica).", []string{"team"}, nil)}
}

func (c *followUpsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *followUpsCollector) Collect(ch chan<- prometheus.Metric) {
	for team, n := range teamLabels(c.get()) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), team)
	}
}

// get returns the counts, counted again when they are older than
// followUpsEvery; the last ones when the store cannot be read.
func (c *followUpsCollector) get() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < followUpsEvery {
		return c.counts
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.svc.FollowUpsDue(ctx)
	if err != nil {
		c.log.Warn("unable to count the follow-ups due", "error", err)
		return c.counts
	}
	c.at, c.counts = time.Now(), counts
	return counts
}

// teamLabels keeps the maxTeamLabels-1 teams with the most follow-ups due
// and sums the others under otherTeams when there are too many.
func teamLabels(counts map[string]int64) map[string]int64 {
	if len(counts) <= maxTeamLabels {
		return counts
	}
	teams := make([]string, 0, len(counts))
	for t := range counts {
		teams = append(teams, t)
	}
	slices.SortFunc(teams, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	out := map[string]int64{}
	for i, t := range teams {
		if i < maxTeamLabels-1 {
			out[t] = counts[t]
		} else {
			out[otherTeams] += counts[t]
		}
	}
	return out
}
