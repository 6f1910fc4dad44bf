package stream_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

// poisonEvents is how many good events TestFaultPoisonFlood stores in
// each of its runs: 100,000, or OUTREACH_TEST_POISON_EVENTS.
func poisonEvents(t *testing.T) int {
	t.Helper()
	v := os.Getenv("OUTREACH_TEST_POISON_EVENTS")
	if v == "" {
		return 100_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		t.Fatalf("OUTREACH_TEST_POISON_EVENTS=%q: want a number of at least 1000", v)
	}
	return n
}

// TestFaultPoisonFlood: 10,000 bad messages mixed into 100,000 good ones
// (one in eleven: not JSON, invalid, unknown types, bad currencies, far
// future, reused ids). Every bad one is in the dead-letter topic with its
// reason, every good one is stored, and the good ones go through at least
// half as fast as in a clean run of the same size, measured first in the
// same test against the same servers.
func TestFaultPoisonFlood(t *testing.T) {
	testenv.RequireRealServers(t)
	start := time.Now()
	good := poisonEvents(t)
	clean := floodRun(t, good, 0)
	poisoned := floodRun(t, good, good/10)
	ratio := clean.Seconds() / poisoned.Seconds()
	t.Logf("%d good events: clean run %v, with %d bad ones mixed in %v: throughput of the good ones %.2f of the clean run's; test took %v",
		good, clean.Round(time.Millisecond), good/10, poisoned.Round(time.Millisecond), ratio, time.Since(start).Round(time.Millisecond))
	if ratio < 0.5 {
		t.Errorf("the good events' throughput under a poison flood is %.2f of a clean run's, want at least 0.5", ratio)
	}
}

// floodRun produces good events (10 per customer) with bad ones spread
// among them to a topic of 6 partitions, then times a new consumer from its
// start until every good event is stored and committed and every bad one
// dead-lettered. It checks both counts.
func floodRun(t *testing.T, good, bad int) time.Duration {
	t.Helper()
	k, r := testenv.NewKafka(t), testenv.NewRedis(t)
	topic, dlq := k.Topic(t, "events", 6), k.Topic(t, "dlq", 1)
	customers := good / 10
	produceFlood(t, k, topic, good, bad, customers)

	store := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	c, err := stream.NewConsumer(stream.ConsumerConfig{Brokers: k.Brokers, Topics: []string{topic},
		Group: "g-" + testenv.Unique(t), DLQTopic: dlq}, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- c.Run(ctx) }()
	testenv.Eventually(t, 3*time.Minute, fmt.Sprintf("%d good events applied", good), func() bool { return c.Applied() >= int64(good) })
	var deadLettered int64
	testenv.Eventually(t, time.Minute, fmt.Sprintf("%d bad messages dead-lettered", bad), func() bool {
		deadLettered = dlqCount(t, k, dlq)
		return deadLettered >= int64(bad)
	})
	took := time.Since(begin)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := c.Applied(); n != int64(good) {
		t.Errorf("%d events applied, want %d", n, good)
	}
	if deadLettered != int64(bad) {
		t.Errorf("%d messages dead-lettered, want %d", deadLettered, bad)
	}
	if n := floodStored(t, r, customers); n != good {
		t.Errorf("%d events stored, want %d", n, good)
	}
	if bad > 0 {
		checkDLQReasons(t, k, dlq, bad)
	}
	return took
}

// produceFlood writes the good events and, after every tenth good one
// while any are left, a bad one.
func produceFlood(t *testing.T, k *testenv.Kafka, topic string, good, bad, customers int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	at := time.Now().Add(-time.Hour)
	msgs := make([]kafka.Message, 0, good+bad)
	for i := range good {
		cust := "f-" + strconv.Itoa(i%customers)
		id := fmt.Sprintf("e-%d", i)
		msgs = append(msgs, kafka.Message{Key: []byte(cust), Value: event(id, cust, at.Add(time.Duration(i)*time.Millisecond))})
		if j := i / 10; i%10 == 9 && j < bad {
			msgs = append(msgs, kafka.Message{Key: []byte(cust), Value: poison(j, id, cust, at)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	errs := make(chan error, 4)
	const chunk = 5000
	for g := range 4 { // 4 writers at once
		go func() {
			var err error
			for from := g * chunk; from < len(msgs) && err == nil; from += 4 * chunk {
				err = w.WriteMessages(ctx, msgs[from:min(from+chunk, len(msgs))]...)
			}
			errs <- err
		}()
	}
	var err error
	for range 4 {
		err = cmp.Or(err, <-errs)
	}
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// poison returns the j-th bad message, of a customer whose last good
// event has the id last.
func poison(j int, last, cust string, at time.Time) []byte {
	ts := at.Format(time.RFC3339Nano)
	switch j % 6 {
	case 0:
		return []byte("this is not json " + strconv.Itoa(j))
	case 1:
		return fmt.Appendf(nil, `{"id":"b-%d","type":"contact","customer_id":%q,"at":%q,"channel":"pigeon"}`, j, cust, ts)
	case 2:
		return fmt.Appendf(nil, `{"id":"b-%d","type":"refund","customer_id":%q,"at":%q}`, j, cust, ts)
	case 3:
		return fmt.Appendf(nil, `{"id":"b-%d","type":"purchase","customer_id":%q,"at":%q,"product":"tv","price":5,"currency":"ABC"}`, j, cust, ts)
	case 4:
		return event(fmt.Sprint("b-", j), cust, time.Now().Add(30*24*time.Hour))
	default: // the id of the good event before it, with other content
		return fmt.Appendf(nil, `{"id":%q,"type":"contact","customer_id":%q,"at":%q,"channel":"sms"}`, last, cust, ts)
	}
}

// dlqCount returns how many messages the dead-letter topic holds.
func dlqCount(t *testing.T, k *testenv.Kafka, dlq string) int64 {
	t.Helper()
	ends, err := stream.EndOffsets(context.Background(), k.Brokers, dlq)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, end := range ends {
		n += end
	}
	return n
}

// checkDLQReasons reads the dead-letter topic and checks that every
// message carries its reason.
func checkDLQReasons(t *testing.T, k *testenv.Kafka, dlq string, n int) {
	t.Helper()
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers, Topic: dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reasons := map[string]int{}
	for range n {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read the DLQ: %v", err)
		}
		reason := headers(m)[stream.HeaderError]
		if reason == "" {
			t.Fatalf("a dead-lettered message without %s: %s", stream.HeaderError, m.Value)
		}
		reason, _, _ = strings.Cut(reason, ":")
		reasons[reason]++
	}
	t.Logf("dead-lettered by reason: %v", reasons)
}

// floodStored counts the events stored for the flood's customers.
func floodStored(t *testing.T, r *testenv.Redis, customers int) int {
	t.Helper()
	ctx := context.Background()
	pipe := r.Client.Pipeline()
	cmds := make([]*goredis.IntCmd, customers)
	for i := range cmds {
		cmds[i] = pipe.ZCard(ctx, r.Prefix+"{c:f-"+strconv.Itoa(i)+"}:h")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n
}
