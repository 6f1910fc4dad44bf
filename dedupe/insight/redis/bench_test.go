package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	insightredis "github.com/outreach/outreach/dedupe/insight/redis"
	"github.com/outreach/outreach/internal/testenv"
)

// benchBatch is what the aggregator counts in one batch: 500 records of
// one partition, half of them blocked, over a few campaigns, teams and
// reasons, within one hour.
func benchBatch(b *testing.B) []dedupe.Tally {
	b.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	hour := time.Now().UTC().Truncate(time.Hour)
	codes := []string{"recent_contact", "frequency_cap", "better_offer", "already_purchased", "claimed", "quiet_hours"}
	tallies := make([]dedupe.Tally, 500)
	for i := range tallies {
		r := dedupe.Record{Kind: dedupe.RecordCheck, Time: hour.Add(time.Duration(i) * time.Second), Allowed: i%2 == 0,
			Request: &dedupe.RecordRequest{Channel: contact.Call, Campaign: fmt.Sprint("campaign-", rnd.IntN(8)), Team: fmt.Sprint("team-", rnd.IntN(5)), Product: "fiber-1000"}}
		if !r.Allowed {
			r.Reasons = []dedupe.RecordReason{{Code: codes[rnd.IntN(len(codes))], Team: fmt.Sprint("team-", rnd.IntN(5)), Campaign: fmt.Sprint("campaign-", rnd.IntN(8))}}
		}
		t, _, err := dedupe.TallyRecord(&r, int64(i))
		if err != nil {
			b.Fatal(err)
		}
		tallies[i] = t
	}
	return tallies
}

// BenchmarkCount compares counting a batch exactly once (the script: the
// guard, the sums, the hourly and daily counters, the expiries) with the
// same increments sent as plain pipelined HINCRBYs, which count a
// redelivery twice. Both report records/s.
func BenchmarkCount(b *testing.B) {
	r := testenv.NewRedis(b)
	ctx := context.Background()
	batch := benchBatch(b)
	records := func(b *testing.B) {
		b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("script", func(b *testing.B) {
		c := insightredis.New(r.Client, insightredis.Options{Prefix: r.Prefix + "s:", Topic: "bench"})
		seq := int64(0)
		for b.Loop() {
			for i := range batch {
				batch[i].Seq = seq
				seq++
			}
			if _, err := c.Count(ctx, map[int][]dedupe.Tally{0: batch}); err != nil {
				b.Fatal(err)
			}
		}
		records(b)
	})
	b.Run("hincrby-baseline", func(b *testing.B) {
		day := batch[0].Hour.Format("20060102")
		prefix := r.Prefix + "b:{i:bench:0}:"
		for b.Loop() {
			pipe := r.Client.Pipeline()
			for _, t := range batch {
				hh := t.Hour.Format("15") + "\x1f"
				for _, ct := range t.Counters {
					pipe.HIncrBy(ctx, prefix+ct.Family+":"+day+":h", hh+ct.Field, 1)
					pipe.HIncrBy(ctx, prefix+ct.Family+":"+day+":d", ct.Field, 1)
				}
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		records(b)
	})
}
