package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	insightredis "github.com/outreach/outreach/dedupe/insight/redis"
	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

// insightFixture is a decisions topic, the test Redis and the counters.
type insightFixture struct {
	kafka    *testenv.Kafka
	redis    *testenv.Redis
	topic    string
	group    string
	counters *insightredis.Counters
}

// newInsightFixture counts into the test Redis, or through client into r
// when r is not nil.
func newInsightFixture(t *testing.T, r *testenv.Redis, client goredis.UniversalClient) *insightFixture {
	t.Helper()
	f := &insightFixture{kafka: testenv.NewKafka(t), redis: r}
	f.topic = f.kafka.Topic(t, "decisions", 3)
	f.group = "insights-" + testenv.Unique(t)
	if r == nil {
		f.redis = testenv.NewRedis(t)
		client = f.redis.Client
	}
	f.counters = insightredis.New(client, insightredis.Options{Prefix: f.redis.Prefix, Topic: f.topic})
	return f
}

// run starts an aggregator in the fixture's group; it stops at cleanup, or
// when stop is called.
func (f *insightFixture) run(t *testing.T, reg prometheus.Registerer) (a *stream.Aggregator, stop func()) {
	t.Helper()
	a, err := stream.NewAggregator(stream.AggregatorConfig{Brokers: f.kafka.Brokers, Topic: f.topic, Group: f.group, Registry: reg}, f.counters)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// produce writes n check records, every third blocked by the retention
// team, keyed by customer so that they spread over the partitions.
func (f *insightFixture) produce(t *testing.T, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		r := dedupe.Record{Kind: dedupe.RecordCheck, Time: time.Now().UTC(), CustomerID: fmt.Sprint("c", i), Allowed: i%3 != 0, Policy: "default",
			Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales", Campaign: "autumn", Team: "sales"}}
		if !r.Allowed {
			r.Reasons = []dedupe.RecordReason{{Code: "recent_contact", Team: "retention", EventIDs: []string{"e1"}}}
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		f.kafka.Produce(t, f.topic, r.CustomerID, b)
	}
}

// totals returns the checks and blocked checks counted today and
// yesterday.
func (f *insightFixture) totals(t *testing.T) (checks, blocked int64) {
	t.Helper()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	cells, err := f.counters.Read(context.Background(), dedupe.FamilyReason, []dedupe.InsightDay{{Day: today.Add(-24 * time.Hour)}, {Day: today}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cells {
		switch c.Field {
		case dedupe.CountChecks:
			checks += c.N
		case dedupe.CountBlocked:
			blocked += c.N
		}
	}
	return checks, blocked
}

// waitChecks waits until n checks are counted, then a little longer for
// any double count to show, and fails unless exactly n are.
func (f *insightFixture) waitChecks(t *testing.T, n int64) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("%d checks counted", n), func() bool {
		checks, _ := f.totals(t)
		return checks >= n
	})
	time.Sleep(300 * time.Millisecond)
	if checks, blocked := f.totals(t); checks != n || blocked != (n+2)/3 {
		t.Errorf("counted %d checks, %d blocked; want exactly %d and %d", checks, blocked, n, (n+2)/3)
	}
}

// records returns outreach_insights_records_total by result.
func records(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != "outreach_insights_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestAggregatorCountsAndPassesOverMalformedRecords(t *testing.T) {
	t.Parallel()
	f := newInsightFixture(t, nil, nil)
	reg := prometheus.NewRegistry()
	f.run(t, reg)
	f.produce(t, 0, 10)
	f.kafka.Produce(t, f.topic, "x", []byte("not json"),
		fmt.Appendf(nil, `{"kind":"check","time":%q,"allowed":false}`, time.Now().UTC().Format(time.RFC3339)),
		fmt.Appendf(nil, `{"kind":"scrub","time":%q,"scrub":{"rows":3}}`, time.Now().UTC().Format(time.RFC3339)))
	f.produce(t, 10, 5)
	f.waitChecks(t, 15)
	testenv.Eventually(t, 10*time.Second, "the results are counted", func() bool { return records(t, reg)["skipped"] == 1 })
	got := records(t, reg)
	if got["counted"] != 15 || got["malformed"] != 2 || got["skipped"] != 1 || got["duplicate"] != 0 {
		t.Errorf("outreach_insights_records_total = %v, want 15 counted, 2 malformed, 1 skipped", got)
	}
}

func TestTwoAggregatorsInOneGroupCountEachRecordOnce(t *testing.T) {
	t.Parallel()
	f := newInsightFixture(t, nil, nil)
	a, _ := f.run(t, nil)
	b, _ := f.run(t, nil)
	// Produce until both have counted some: the group has split the
	// partitions between them.
	n := 0
	deadline := time.Now().Add(60 * time.Second)
	for a.Counted() == 0 || b.Counted() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d records, counted %d and %d: the second aggregator never got a partition", n, a.Counted(), b.Counted())
		}
		f.produce(t, n, 6)
		n += 6
		time.Sleep(200 * time.Millisecond)
	}
	f.produce(t, n, 30)
	n += 30
	f.waitChecks(t, int64(n))
	if got := a.Counted() + b.Counted(); got != int64(n) {
		t.Errorf("the aggregators counted %d + %d records, want %d in all", a.Counted(), b.Counted(), n)
	}
}

func TestReplayFromTheEarliestOffsetDoesNotCountTwice(t *testing.T) {
	t.Parallel()
	f := newInsightFixture(t, nil, nil)
	_, stop := f.run(t, nil)
	f.produce(t, 0, 20)
	f.waitChecks(t, 20)
	stop()

	// Reset the group: it reads the topic again from the earliest offset.
	cl := &kafka.Client{Addr: kafka.TCP(f.kafka.Brokers...)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cl.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{f.group}})
	if err != nil || resp.Errors[f.group] != nil {
		t.Fatalf("delete group: %v %v", err, resp)
	}
	reg := prometheus.NewRegistry()
	again, _ := f.run(t, reg)
	f.produce(t, 20, 4)
	f.waitChecks(t, 24)
	testenv.Eventually(t, 30*time.Second, "the replay has read every record", func() bool { return records(t, reg)["duplicate"] >= 20 })
	if got := records(t, reg); got["duplicate"] != 20 || got["counted"] != 4 || again.Counted() != 4 {
		t.Errorf("the replay: %v, Counted %d; want the 20 old records skipped and the 4 new counted", got, again.Counted())
	}
}

func TestAggregatorCommitsNothingWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	r := testenv.NewSingleRedis(t) // the proxy fronts one server
	proxy := testenv.NewProxy(t, r.Addr)
	client := goredis.NewClient(&goredis.Options{Addr: proxy.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	f := newInsightFixture(t, r, client)
	a, _ := f.run(t, nil)
	f.produce(t, 0, 9)
	f.waitChecks(t, 9)
	committed := func() int64 {
		cl := &kafka.Client{Addr: kafka.TCP(f.kafka.Brokers...)}
		resp, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: f.group, Topics: map[string][]int{f.topic: {0, 1, 2}}})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, p := range resp.Topics[f.topic] {
			n += max(p.CommittedOffset, 0)
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, "9 offsets committed", func() bool { return committed() == 9 })

	proxy.Down()
	f.produce(t, 9, 9)
	testenv.Eventually(t, 30*time.Second, "the aggregator reports the outage", func() bool { return a.Healthy(context.Background()) != nil })
	time.Sleep(500 * time.Millisecond)
	if n := committed(); n != 9 {
		t.Errorf("%d offsets committed while Redis is down, want still 9", n)
	}
	proxy.Up(t)
	f.waitChecks(t, 18)
	testenv.Eventually(t, 10*time.Second, "the aggregator is healthy again", func() bool { return a.Healthy(context.Background()) == nil })
}

func TestNewAggregatorNamesMissingSettings(t *testing.T) {
	_, err := stream.NewAggregator(stream.AggregatorConfig{}, nil)
	for _, want := range []string{"brokers", "decisions topic", "group"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}
