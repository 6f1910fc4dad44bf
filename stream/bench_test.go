package stream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

// Every figure of these benchmarks is meant to be read against the baseline
// beside it, measured in the same run: the machines they run on are shared
// and noisy, so absolute numbers say little. See bench/README.md.

const (
	benchCustomers  = 1000
	benchPartitions = 6 // as outreachd creates its topics
	benchBatch      = 500
)

// benchProduce writes n events of benchCustomers customers to topic, keyed
// by customer as stream.Producer does, in large batches.
func benchProduce(b *testing.B, k *testenv.Kafka, topic string, n int) {
	b.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	gen := eventgen.New(1, benchCustomers, "tp-", time.Now(), 30*24*time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	progress := testenv.NewProgress(b)
	const chunk = 5000
	for done := 0; done < n; done += chunk {
		msgs := make([]kafka.Message, min(chunk, n-done))
		for i := range msgs {
			e := gen.Next()
			v, err := json.Marshal(&e)
			if err != nil {
				b.Fatal(err)
			}
			msgs[i] = kafka.Message{Key: []byte(e.CustomerID), Value: v}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			b.Fatalf("produce to %s: %v", topic, err)
		}
		progress.Printf("produced %d of %d events", done+len(msgs), n)
	}
}

// benchApplied returns outreach_events_applied_total of reg.
func benchApplied(b *testing.B, reg *prometheus.Registry) int {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "outreach_events_applied_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}

// benchStored counts the events stored for the benchmark's customers.
func benchStored(b *testing.B, r *testenv.Redis) int {
	b.Helper()
	ctx := context.Background()
	pipe := r.Client.Pipeline()
	var cmds []*goredis.IntCmd
	for i := range benchCustomers {
		cmds = append(cmds, pipe.ZCard(ctx, r.Prefix+"{c:"+eventgen.CustomerID(i)+"}:h"))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatalf("count stored events: %v", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n
}

// benchClear deletes the keys of the benchmark's customers.
func benchClear(b *testing.B, r *testenv.Redis) {
	b.Helper()
	ctx := context.Background()
	pipe := r.Client.Pipeline()
	for i := range benchCustomers {
		for _, kind := range []string{"h", "i", "s", "r", "f"} {
			pipe.Del(ctx, r.Prefix+"{c:"+eventgen.CustomerID(i)+"}:"+kind)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		b.Fatalf("delete keys: %v", err)
	}
}

// BenchmarkConsumerThroughput pre-produces 50,000 events (10,000 on kfake)
// of 1,000 customers to a topic of 6 partitions, then times a new consumer
// group from its start until every event is applied to Redis and committed.
// Each iteration is a new group on the same topic and an empty Redis prefix.
// Its baseline, baseline-read-only, is a kafka-go Reader in a new group of
// the same settings that only fetches and commits in batches of 500: the
// ceiling that Kafka and kafka-go put on the consumer.
func BenchmarkConsumerThroughput(b *testing.B) {
	k := testenv.NewKafka(b)
	r := testenv.NewRedis(b)
	total := 50_000
	if !k.Real() {
		total = 10_000
	}
	topic := k.Topic(b, "throughput", benchPartitions)
	dlq := k.Topic(b, "throughput-dlq", 1)
	benchProduce(b, k, topic, total)

	b.Run("consumer", func(b *testing.B) {
		var startup time.Duration
		for b.Loop() {
			b.StopTimer()
			benchClear(b, r)
			reg := prometheus.NewRegistry()
			store := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.StartTimer()

			began := time.Now()
			c, err := stream.NewConsumer(stream.ConsumerConfig{
				Brokers: k.Brokers, Topics: []string{topic}, Group: "g-" + testenv.Unique(b), DLQTopic: dlq,
				Metrics: stream.NewMetrics(reg),
			}, store)
			if err != nil {
				b.Fatal(err)
			}
			go func() { done <- c.Run(ctx) }()
			first := benchWait(b, total, func() int { return benchApplied(b, reg) })
			startup += first.Sub(began)

			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatalf("Run: %v", err)
			}
			if n := benchStored(b, r); n != total {
				b.Fatalf("%d events in Redis, want %d", n, total)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(startup.Milliseconds())/float64(b.N), "first-event-ms")
	})

	b.Run("baseline-read-only", func(b *testing.B) {
		var startup time.Duration
		for b.Loop() {
			began := time.Now()
			rd := kafka.NewReader(kafka.ReaderConfig{ // the settings of stream.NewConsumer
				Brokers: k.Brokers, GroupID: "g-" + testenv.Unique(b), GroupTopics: []string{topic},
				MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond, StartOffset: kafka.FirstOffset,
				CommitInterval: 0, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
			})
			read := make(chan int, 1)
			var first time.Time
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				n := 0
				batch := make([]kafka.Message, 0, benchBatch)
				for n < total {
					m, err := rd.FetchMessage(ctx)
					if err != nil {
						b.Errorf("FetchMessage after %d: %v", n, err)
						break
					}
					if n == 0 {
						first = time.Now()
					}
					batch = append(batch, m)
					n++
					if len(batch) == benchBatch || n == total {
						if err := rd.CommitMessages(ctx, batch...); err != nil {
							b.Errorf("CommitMessages: %v", err)
							break
						}
						batch = batch[:0]
						read <- n
					}
				}
				close(read)
			}()
			n := 0
			benchWait(b, total, func() int {
				for {
					select {
					case v, ok := <-read:
						if !ok {
							if n < total {
								b.Fatalf("the reader stopped after %d of %d messages", n, total)
							}
							return n
						}
						n = v
					default:
						return n
					}
				}
			})
			startup += first.Sub(began)
			b.StopTimer()
			if err := rd.Close(); err != nil {
				b.Errorf("close reader: %v", err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(startup.Milliseconds())/float64(b.N), "first-event-ms")
	})
}

// benchWait polls count every 5ms until it reaches total, printing progress
// if it takes long, and fails after two minutes. It returns when count first
// went above zero.
func benchWait(b *testing.B, total int, count func() int) time.Time {
	b.Helper()
	start := time.Now()
	var first time.Time
	progress := testenv.NewProgress(b)
	for {
		n := count()
		now := time.Now()
		if n > 0 && first.IsZero() {
			first = now
		}
		if n >= total {
			return first
		}
		progress.Printf("%d of %d events after %v", n, total, now.Sub(start).Round(time.Millisecond))
		if now.Sub(start) > 2*time.Minute {
			b.Fatalf("only %d of %d events after two minutes", n, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkFreshness measures, under light load, how long an event takes
// from its produce call until a timeline read shows it: with a consumer
// running on a topic of 6 partitions, it produces one event of a new
// customer at a time through stream.Producer, polls the store every
// millisecond until the event is visible, and waits 10ms before the next.
// Its baseline is a plain produce-to-FetchMessage round trip through a
// non-group Reader on a topic of the same kind, with the same writer
// settings; the two alternate, sample by sample, so noise hits both alike.
// The spec's target is p99 < 100ms under light load.
func BenchmarkFreshness(b *testing.B) {
	const samples = 200
	k := testenv.NewKafka(b)
	r := testenv.NewRedis(b)
	topic := k.Topic(b, "fresh", benchPartitions)
	dlq := k.Topic(b, "fresh-dlq", 1)
	baseTopic := k.Topic(b, "fresh-base", benchPartitions)
	store := redis.New(r.Client, redis.Options{Prefix: r.Prefix})

	c, err := stream.NewConsumer(stream.ConsumerConfig{
		Brokers: k.Brokers, Topics: []string{topic}, Group: "g-" + testenv.Unique(b), DLQTopic: dlq,
	}, store)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	b.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
	producer := stream.NewProducer(k.Brokers, topic)
	b.Cleanup(func() { producer.Close() })

	// The baseline writes like stream.NewProducer, but to partition 0,
	// which is what the non-group reader reads.
	baseWriter := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: baseTopic,
		Balancer:     kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }),
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, MaxAttempts: 3}
	b.Cleanup(func() { baseWriter.Close() })
	baseReader := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Topic: baseTopic, Partition: 0,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond})
	b.Cleanup(func() { baseReader.Close() })

	gen := eventgen.New(4, 1, "fresh-", time.Now(), time.Hour)
	n := 0
	// visible produces one event of a new customer and returns how long it
	// took to show in its timeline.
	visible := func(timeout time.Duration) time.Duration {
		n++
		e := gen.For(fmt.Sprintf("fresh-%d", n))
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		if err := producer.Produce(ctx, []contact.Event{e}); err != nil {
			b.Fatalf("produce: %v", err)
		}
		for {
			events, _, err := store.Timeline(ctx, e.CustomerID, contact.Page{Limit: 1})
			if err != nil {
				b.Fatalf("Timeline: %v", err)
			}
			if len(events) > 0 {
				return time.Since(start)
			}
			if time.Since(start) > timeout {
				b.Fatalf("event %s not visible after %v", e.ID, timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// roundTrip writes one message and returns how long the reader took
	// to fetch it.
	roundTrip := func(timeout time.Duration) time.Duration {
		n++
		v := fmt.Appendf(nil, "base-%d", n)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		if err := baseWriter.WriteMessages(ctx, kafka.Message{Key: v, Value: v}); err != nil {
			b.Fatalf("produce: %v", err)
		}
		for {
			m, err := baseReader.FetchMessage(ctx)
			if err != nil {
				b.Fatalf("FetchMessage: %v", err)
			}
			if bytes.Equal(m.Value, v) {
				return time.Since(start)
			}
		}
	}

	// Warm up: the consumer joins its group, both readers find their
	// partitions.
	visible(time.Minute)
	roundTrip(time.Minute)

	var lat, base []time.Duration
	progress := testenv.NewProgress(b)
	for b.Loop() {
		for i := range samples {
			lat = append(lat, visible(10*time.Second))
			time.Sleep(10 * time.Millisecond)
			base = append(base, roundTrip(10*time.Second))
			time.Sleep(10 * time.Millisecond)
			progress.Printf("%d of %d samples: p99 %.1fms, baseline p99 %.1fms",
				i+1, samples, benchMs(benchQuantile(lat, .99)), benchMs(benchQuantile(base, .99)))
		}
	}
	b.Logf("%d samples: max %.1fms, baseline max %.1fms", len(lat), benchMs(benchQuantile(lat, 1)), benchMs(benchQuantile(base, 1)))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(benchMs(benchQuantile(lat, .50)), "p50-ms")
	b.ReportMetric(benchMs(benchQuantile(lat, .99)), "p99-ms")
	b.ReportMetric(benchMs(benchQuantile(base, .50)), "baseline-p50-ms")
	b.ReportMetric(benchMs(benchQuantile(base, .99)), "baseline-p99-ms")
}

// benchQuantile returns the q-quantile of ds by the nearest-rank method.
func benchQuantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func benchMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
