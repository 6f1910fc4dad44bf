package redis_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	insightredis "github.com/outreach/outreach/dedupe/insight/redis"
	"github.com/outreach/outreach/internal/testenv"
)

// now is 14:30 today: keys get real TTLs from it.
var now = time.Now().UTC().Truncate(24 * time.Hour).Add(14*time.Hour + 30*time.Minute)

func newCounters(t *testing.T) (*insightredis.Counters, *testenv.Redis) {
	t.Helper()
	r := testenv.NewRedis(t)
	return insightredis.New(r.Client, insightredis.Options{Prefix: r.Prefix, Topic: "decisions", Now: func() time.Time { return now }}), r
}

// tally is what a check at hour counts: #checks, and with a code #blocked
// and the code.
func tally(seq int64, hour time.Time, code string) dedupe.Tally {
	t := dedupe.Tally{Seq: seq, Hour: hour, Counters: []dedupe.InsightCounter{{Family: dedupe.FamilyReason, Field: dedupe.CountChecks}}}
	if code != "" {
		t.Counters = append(t.Counters, dedupe.InsightCounter{Family: dedupe.FamilyReason, Field: dedupe.CountBlocked},
			dedupe.InsightCounter{Family: dedupe.FamilyReason, Field: code},
			dedupe.InsightCounter{Family: dedupe.FamilyCampaign, Field: "autumn\x1f" + code})
	}
	return t
}

// read returns the counters of family on day as "HH field" (or "day
// field") → n.
func read(t *testing.T, c *insightredis.Counters, family string, day time.Time, hourly bool) map[string]int64 {
	t.Helper()
	cells, err := c.Read(context.Background(), family, []dedupe.InsightDay{{Day: day, Hourly: hourly}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, cell := range cells {
		at := "day"
		if hourly {
			at = cell.At.Format("15")
		}
		out[at+" "+cell.Field] += cell.N
	}
	return out
}

func count(t *testing.T, c *insightredis.Counters, tallies map[int][]dedupe.Tally) int {
	t.Helper()
	skipped, err := c.Count(context.Background(), tallies)
	if err != nil {
		t.Fatal(err)
	}
	return skipped
}

func TestCountIsExactUnderRedelivery(t *testing.T) {
	t.Parallel()
	c, _ := newCounters(t)
	today := now.Truncate(24 * time.Hour)
	h13, h14 := today.Add(13*time.Hour), today.Add(14*time.Hour)
	batch := []dedupe.Tally{tally(0, h13, "recent_contact"), tally(1, h13, ""), tally(2, h14, "recent_contact"), tally(3, h14, "claimed")}
	if skipped := count(t, c, map[int][]dedupe.Tally{0: batch[:3], 1: batch[3:]}); skipped != 0 {
		t.Errorf("first delivery: %d skipped, want 0", skipped)
	}
	want := map[string]int64{
		"13 #checks": 2, "13 #blocked": 1, "13 recent_contact": 1,
		"14 #checks": 2, "14 #blocked": 2, "14 recent_contact": 1, "14 claimed": 1,
	}
	wantDay := map[string]int64{"day #checks": 4, "day #blocked": 3, "day recent_contact": 2, "day claimed": 1}
	check := func(when string) {
		t.Helper()
		if got := read(t, c, dedupe.FamilyReason, today, true); !maps.Equal(got, want) {
			t.Errorf("%s: hours = %v, want %v", when, got, want)
		}
		if got := read(t, c, dedupe.FamilyReason, today, false); !maps.Equal(got, wantDay) {
			t.Errorf("%s: day = %v, want %v", when, got, wantDay)
		}
	}
	check("first delivery")

	// The same batch again, as after a commit that failed.
	if skipped := count(t, c, map[int][]dedupe.Tally{0: batch[:3], 1: batch[3:]}); skipped != 4 {
		t.Errorf("redelivery: %d skipped, want 4", skipped)
	}
	check("redelivery")

	// A batch that overlaps what was counted: only what is new counts.
	more := []dedupe.Tally{batch[1], batch[2], tally(3, h14, "claimed"), tally(4, h14, "")}
	if skipped := count(t, c, map[int][]dedupe.Tally{0: more}); skipped != 2 {
		t.Errorf("overlapping batch: %d skipped, want 2", skipped)
	}
	want["14 #checks"] += 2
	want["14 #blocked"]++
	want["14 claimed"]++
	wantDay["day #checks"] += 2
	wantDay["day #blocked"]++
	wantDay["day claimed"]++
	check("overlapping batch")

	if got := read(t, c, dedupe.FamilyCampaign, today, false); !maps.Equal(got, map[string]int64{"day autumn\x1frecent_contact": 2, "day autumn\x1fclaimed": 2}) {
		t.Errorf("campaign day = %v", got)
	}
}

func TestCountKeepsCountersForTheRetention(t *testing.T) {
	t.Parallel()
	c, r := newCounters(t)
	today := now.Truncate(24 * time.Hour)
	yesterday := today.Add(-24 * time.Hour)
	gone := now.Add(-dedupe.InsightRetention - 48*time.Hour).Truncate(time.Hour)
	count(t, c, map[int][]dedupe.Tally{2: {tally(10, gone, "claimed"), tally(11, yesterday.Add(23*time.Hour), "claimed"), tally(12, today, "")}})

	if got := read(t, c, dedupe.FamilyReason, yesterday, false); got["day #checks"] != 1 {
		t.Errorf("yesterday = %v, want one check", got)
	}
	if got := read(t, c, dedupe.FamilyReason, gone.Truncate(24*time.Hour), false); len(got) != 0 {
		t.Errorf("a day past the retention holds %v", got)
	}
	keys := r.Keys(t, r.Prefix+"*")
	// The guard, the partitions, yesterday's reason and campaign counters
	// and today's reason counters, each by hour and by day.
	if len(keys) != 8 {
		t.Errorf("keys: %v", keys)
	}
	for _, k := range keys {
		ttl, err := r.Client.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case k == r.Prefix+"{i:decisions:2}:offset" || k == r.Prefix+"{i:decisions}:partitions":
			if ttl >= 0 {
				t.Errorf("%s expires in %v; it must be kept", k, ttl)
			}
		case r.Real():
			// Each day is kept until the retention has passed since its end.
			day, _ := time.Parse("20060102", k[len(k)-10:len(k)-2])
			want := time.Until(day.Add(24*time.Hour + dedupe.InsightRetention))
			if ttl < want-time.Minute || ttl > want+time.Minute {
				t.Errorf("%s expires in %v, want about %v", k, ttl, want)
			}
		}
	}
	// The old tally moved the guard all the same.
	if skipped := count(t, c, map[int][]dedupe.Tally{2: {tally(10, gone, "claimed")}}); skipped != 1 {
		t.Errorf("the old tally again: %d skipped, want 1", skipped)
	}
}

func TestCountSumsPartitionsOnRead(t *testing.T) {
	t.Parallel()
	c, _ := newCounters(t)
	hour := now.Truncate(time.Hour)
	tallies := map[int][]dedupe.Tally{}
	for p := range 6 {
		for i := range p + 1 {
			tallies[p] = append(tallies[p], tally(int64(i), hour, "recent_contact"))
		}
	}
	count(t, c, tallies)
	if got := read(t, c, dedupe.FamilyReason, hour.Truncate(24*time.Hour), true); got["14 #checks"] != 21 || got["14 recent_contact"] != 21 {
		t.Errorf("hour = %v, want 21 checks over 6 partitions", got)
	}
}

func TestCountAndReadFailWhileRedisFails(t *testing.T) {
	t.Parallel()
	r := testenv.NewSingleRedis(t)
	if r.Real() {
		t.Skip("needs miniredis to fail on purpose")
	}
	c := insightredis.New(r.Client, insightredis.Options{Prefix: r.Prefix, Topic: "decisions", Now: func() time.Time { return now }})
	batch := map[int][]dedupe.Tally{0: {tally(0, now.Truncate(time.Hour), "claimed")}}
	r.Mini.SetError("ERR down")
	if _, err := c.Count(context.Background(), batch); contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("Count while Redis fails: %v, want unavailable", err)
	}
	if _, err := c.Read(context.Background(), dedupe.FamilyReason, []dedupe.InsightDay{{Day: now.Truncate(24 * time.Hour)}}); contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("Read while Redis fails: %v, want unavailable", err)
	}
	r.Mini.SetError("")

	// Redis lost its scripts: they are loaded again.
	if err := r.Client.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if skipped := count(t, c, batch); skipped != 0 {
		t.Errorf("after the outage: %d skipped", skipped)
	}
	if got := read(t, c, dedupe.FamilyReason, now.Truncate(24*time.Hour), false); got["day claimed"] != 1 {
		t.Errorf("day = %v, want the claim counted once", got)
	}
}

func TestReadRefusesWhatIsNotACounter(t *testing.T) {
	t.Parallel()
	c, r := newCounters(t)
	day := now.Truncate(24 * time.Hour)
	count(t, c, map[int][]dedupe.Tally{0: {tally(0, day, "")}})
	key := fmt.Sprintf("%s{i:decisions:0}:reason:%s:h", r.Prefix, day.Format("20060102"))
	if err := r.Client.HSet(context.Background(), key, "xx\x1f#checks", "1").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(context.Background(), dedupe.FamilyReason, []dedupe.InsightDay{{Day: day, Hourly: true}})
	if contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("Read of a corrupt field: %v, want unavailable", err)
	}
	// Reading nothing is not an error.
	cells, err := c.Read(context.Background(), dedupe.FamilyProduct, []dedupe.InsightDay{{Day: day}})
	if err != nil || len(cells) != 0 {
		t.Errorf("Read of no counters: %v, %v", cells, err)
	}
}
