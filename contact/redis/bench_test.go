package redis_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/testenv"
)

// Every figure of these benchmarks is meant to be read against the baseline
// beside it, measured in the same run: the machines they run on are shared
// and noisy, so absolute numbers say little. See bench/README.md.

const (
	benchBatchSize = 500  // events per Apply, the consumer's default batch
	benchCustomers = 1000 // customers the events are spread over
	// benchResetEvery bounds what a long run keeps in Redis: after this many
	// events the benchmark deletes its keys, with the timer stopped.
	benchResetEvery = 50_000
	benchSpan       = 90 * 24 * time.Hour // how far back events go
)

var benchKinds = []string{"h", "i", "s", "r", "f", "u"} // the keys of a customer, follow-ups (u) included

// benchKey is the key the store writes e's history to, for the raw baseline.
func benchKey(prefix string, e *contact.Event) string {
	return prefix + "{c:" + e.CustomerID + "}:h"
}

// benchDeleteCustomers deletes every key of the generator's customers.
func benchDeleteCustomers(tb testing.TB, r *testenv.Redis, customers int) {
	tb.Helper()
	ctx := context.Background()
	pipe := r.Client.Pipeline()
	for i := range customers {
		for _, kind := range benchKinds {
			pipe.Del(ctx, r.Prefix+"{c:"+eventgen.CustomerID(i)+"}:"+kind)
		}
		if pipe.Len() >= 5000 {
			if _, err := pipe.Exec(ctx); err != nil {
				tb.Fatalf("delete keys: %v", err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		tb.Fatalf("delete keys: %v", err)
	}
}

// applyBatch is one batch of new events, with what the raw baseline writes.
type applyBatch struct {
	events  []contact.Event
	keys    []string
	members [][]byte
	scores  []float64
}

// applySource makes batches of events never stored before, the same for
// every arm of a benchmark, and clears Redis every benchResetEvery events.
type applySource struct {
	r      *testenv.Redis
	gen    *eventgen.Generator
	stored int
}

func newApplySource(r *testenv.Redis) *applySource {
	return &applySource{r: r, gen: eventgen.New(1, benchCustomers, "ev-", time.Now(), benchSpan)}
}

// next returns the next batch; it stops the benchmark timer while it works.
func (src *applySource) next(b *testing.B) applyBatch {
	b.StopTimer()
	defer b.StartTimer()
	if src.stored >= benchResetEvery {
		benchDeleteCustomers(b, src.r, benchCustomers)
		src.stored = 0
	}
	events := src.gen.Batch(benchBatchSize)
	batch := applyBatch{events: events, keys: make([]string, len(events)),
		members: make([][]byte, len(events)), scores: make([]float64, len(events))}
	for i := range events {
		m, err := json.Marshal(&events[i])
		if err != nil {
			b.Fatal(err)
		}
		batch.keys[i] = benchKey(src.r.Prefix, &events[i])
		batch.members[i] = m
		batch.scores[i] = float64(events[i].At.UnixMilli())
	}
	src.stored += len(events)
	return batch
}

// BenchmarkApply measures Store.Apply on batches of 500 new events of 1,000
// customers. Its baseline, baseline-raw-zadd, writes the same JSON members
// with one raw pipelined ZADD each: the ratio is the store's overhead
// (encoding, the offer index, trimming and expiry).
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		r := testenv.NewRedis(b)
		s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
		src := newApplySource(r)
		for b.Loop() {
			batch := src.next(b)
			if _, err := s.Apply(ctx, batch.events); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchBatchSize)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("baseline-raw-zadd", func(b *testing.B) {
		r := testenv.NewRedis(b)
		src := newApplySource(r)
		for b.Loop() {
			batch := src.next(b)
			pipe := r.Client.Pipeline()
			for i := range batch.members {
				pipe.ZAdd(ctx, batch.keys[i], goredis.Z{Score: batch.scores[i], Member: batch.members[i]})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchBatchSize)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkMemoryPerEvent stores 100 events for each of 1,000 customers and
// reports what Redis spends per event: bytes/event from used_memory of INFO
// memory (the whole server, so other clients add noise), usage-bytes/event
// from MEMORY USAGE of the benchmark's own keys, and json-bytes/event, the
// average stored JSON member, as the baseline. Offers are stored twice (the
// :f index), and that is counted. It needs a real Redis.
func BenchmarkMemoryPerEvent(b *testing.B) {
	const customers, perCustomer = 1000, 100
	r := testenv.NewRedis(b)
	if !r.Real() || r.Cluster {
		b.Skip("needs a real Redis server (set " + testenv.RedisEnv + "): miniredis does not report memory, and a cluster reports it per node")
	}
	ctx := context.Background()
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	var usedBytes, usageBytes, jsonBytes, events int64
	for b.Loop() {
		gen := eventgen.New(2, customers, "mem-", time.Now(), benchSpan)
		before := benchUsedMemory(b, r.Client)
		batch := make([]contact.Event, 0, benchBatchSize)
		n := 0
		progress := testenv.NewProgress(b)
		for range perCustomer {
			for c := range customers {
				e := gen.For(eventgen.CustomerID(c))
				m, err := json.Marshal(&e)
				if err != nil {
					b.Fatal(err)
				}
				jsonBytes += int64(len(m))
				batch = append(batch, e)
				if len(batch) == benchBatchSize {
					if _, err := s.Apply(ctx, batch); err != nil {
						b.Fatal(err)
					}
					n += len(batch)
					batch = batch[:0]
					progress.Printf("stored %d of %d events", n, customers*perCustomer)
				}
			}
		}
		if _, err := s.Apply(ctx, batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
		events += int64(n)
		usedBytes += benchUsedMemory(b, r.Client) - before
		usageBytes += benchMemoryUsage(b, r, customers)
		enc, _ := r.Client.ObjectEncoding(ctx, r.Prefix+"{c:"+eventgen.CustomerID(0)+"}:h").Result()
		b.Logf("contacts sorted set encoding: %s", enc)
		benchDeleteCustomers(b, r, customers)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(usedBytes)/float64(events), "bytes/event")
	b.ReportMetric(float64(usageBytes)/float64(events), "usage-bytes/event")
	b.ReportMetric(float64(jsonBytes)/float64(events), "json-bytes/event")
}

// benchUsedMemory returns used_memory of INFO memory.
func benchUsedMemory(b *testing.B, rdb goredis.UniversalClient) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("used_memory %q: %v", v, err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// benchMemoryUsage sums MEMORY USAGE (every element sampled) of the
// customers' keys.
func benchMemoryUsage(b *testing.B, r *testenv.Redis, customers int) int64 {
	b.Helper()
	ctx := context.Background()
	pipe := r.Client.Pipeline()
	var cmds []*goredis.IntCmd
	for i := range customers {
		for _, kind := range benchKinds {
			cmds = append(cmds, pipe.MemoryUsage(ctx, r.Prefix+"{c:"+eventgen.CustomerID(i)+"}:"+kind, 0))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
		b.Fatalf("MEMORY USAGE: %v", err)
	}
	var sum int64
	for _, c := range cmds {
		sum += c.Val() // 0 for a key that does not exist
	}
	return sum
}

// benchReadCustomer stores n events of one customer for the read
// benchmarks and returns its id.
func benchReadCustomer(b *testing.B, s *redis.Store, n int) string {
	b.Helper()
	id := eventgen.CustomerID(0)
	gen := eventgen.New(3, 1, "read-", time.Now(), benchSpan)
	for n > 0 {
		events := make([]contact.Event, min(n, benchBatchSize))
		for i := range events {
			events[i] = gen.For(id)
		}
		if _, err := s.Apply(context.Background(), events); err != nil {
			b.Fatal(err)
		}
		n -= len(events)
	}
	return id
}

// benchRawRead is the baseline of the read benchmarks: one pipeline of the
// reads the store makes, with nothing decoded. For a timeline page: the
// newest 50 history members and the state (its slots, recent contacts and
// offers); for the facts of a check: the state, the claim and the
// suppression entries.
func benchRawRead(b *testing.B, r *testenv.Redis, id string, facts bool) {
	ctx := context.Background()
	k := r.Prefix + "{c:" + id + "}:"
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := strconv.FormatInt(time.Now().UnixMilli(), 10)
			pipe := r.Client.Pipeline()
			if !facts {
				pipe.ZRevRangeByScoreWithScores(ctx, k+"h", &goredis.ZRangeBy{Min: "-inf", Max: "+inf", Count: 50})
			}
			pipe.HGetAll(ctx, k+"s")
			pipe.ZRangeWithScores(ctx, k+"r", 0, -1)
			pipe.ZRangeByScoreWithScores(ctx, k+"f", &goredis.ZRangeBy{Min: "(" + now, Max: "+inf"})
			if facts {
				pipe.Get(ctx, k+"claim")
				pipe.HGetAll(ctx, k+"dnc")
				pipe.HGetAll(ctx, r.Prefix+"{dnc}:lists")
			}
			if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkTimeline reads the first page (50) of the timeline of a customer
// with 200 events, with its derived state, from parallel goroutines. Its
// baseline, baseline-raw, makes the same reads raw in one pipeline.
func BenchmarkTimeline(b *testing.B) {
	r := testenv.NewRedis(b)
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	id := benchReadCustomer(b, s, 200)
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				events, _, err := s.Timeline(ctx, id, contact.Page{Limit: 50})
				if err != nil || len(events) != 50 {
					b.Errorf("Timeline: %d events, %v", len(events), err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
	b.Run("baseline-raw", func(b *testing.B) { benchRawRead(b, r, id, false) })
}

// BenchmarkFacts reads everything a pre-dial decision needs about a customer
// with 200 events, from parallel goroutines. Its baseline, baseline-raw,
// makes the same reads raw in one pipeline.
func BenchmarkFacts(b *testing.B) {
	r := testenv.NewRedis(b)
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	id := benchReadCustomer(b, s, 200)
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				f := s.Facts(ctx, []contact.Lookup{{CustomerID: id}})
				if f[0].Err != nil || len(f[0].State.LastContacts) == 0 {
					b.Errorf("Facts: %+v", f[0])
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
	b.Run("baseline-raw", func(b *testing.B) { benchRawRead(b, r, id, true) })
}

// BenchmarkFactsLongHistory reads the facts of a check of a customer with
// 10,000 events, whose state is full (100 recent contacts, 50 live offers):
// all-offers decodes every offer, as a check did before it named its
// product; one-product decodes those of the check's product only, as a
// check does now. Its baseline, baseline-raw, makes the same reads raw.
func BenchmarkFactsLongHistory(b *testing.B) {
	r := testenv.NewRedis(b)
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	id := benchReadCustomer(b, s, 10_000)
	ctx := context.Background()
	for _, bc := range []struct {
		name     string
		products []string
	}{{"all-offers", nil}, {"one-product", []string{"fiber-500"}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f := s.Facts(ctx, []contact.Lookup{{CustomerID: id, OfferProducts: bc.products}})
				if f[0].Err != nil || len(f[0].State.Recent) == 0 {
					b.Fatalf("Facts: %+v", f[0])
				}
			}
		})
	}
	b.Run("baseline-raw", func(b *testing.B) { benchRawRead(b, r, id, true) })
}
