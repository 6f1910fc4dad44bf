package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

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
// (one in eleven: not JSON, invalid, an unknown type, a bad currency, far
// in the future, a reused id). Every bad one is in the dead-letter topic
// with its reason, every good one is stored, and outreachd takes the good
// ones at least half as fast as in a clean run of the same size, measured
// first in the same test against the same servers (the better of two
// rounds, if the first falls short).
func TestFaultPoisonFlood(t *testing.T) {
	testenv.RequireRealServers(t)
	start := time.Now()
	good := poisonEvents(t)
	// A second pair of runs if the first is under the bar, and the best
	// time of each kind: a machine shared with other work may slow one run
	// of a pair and not the other.
	var clean, poisoned time.Duration
	var ratio float64
	for round := 1; round <= 2 && ratio < 0.5; round++ {
		c, p := floodRun(t, good, 0), floodRun(t, good, good/10)
		clean, poisoned = minPositive(clean, c), minPositive(poisoned, p)
		ratio = clean.Seconds() / poisoned.Seconds()
		t.Logf("round %d: %d good events: clean run %v, with %d bad ones mixed in %v; best so far: throughput of the good ones %.2f of the clean run's",
			round, good, c.Round(time.Millisecond), good/10, p.Round(time.Millisecond), ratio)
	}
	t.Logf("test took %v", time.Since(start).Round(time.Millisecond))
	if ratio < 0.5 {
		t.Errorf("the good events' throughput under a poison flood is %.2f of a clean run's, want at least 0.5", ratio)
	}
}

func minPositive(a, b time.Duration) time.Duration {
	if a == 0 {
		return b
	}
	return min(a, b)
}

// floodRun produces good events (10 per customer) with bad ones spread
// among them to a topic of 6 partitions, then starts outreachd and times it
// until every good event is applied and every bad one dead-lettered. It
// checks what was stored and what the dead-letter topic holds.
func floodRun(t *testing.T, good, bad int) time.Duration {
	t.Helper()
	shared := testenv.NewSingleRedis(t)
	r := newRig(t, rigConfig{RedisAddr: shared.Addr, Prefix: shared.Prefix, Brokers: strings.Split(os.Getenv(testenv.KafkaEnv), ","), Partitions: 6})
	customers := make([]string, good/10)
	for i := range customers {
		customers[i] = fmt.Sprint("f-", i)
	}
	produceFlood(t, r, customers, good, bad)
	d := r.start()
	begin := time.Now()
	testenv.Eventually(t, 3*time.Minute, fmt.Sprintf("%d good events applied and %d bad ones dead-lettered", good, bad), func() bool {
		applied, _ := metric(d.URL, "outreach_events_applied_total")
		dead, _ := metric(d.URL, "outreach_events_dead_lettered_total")
		return applied >= float64(good) && dead >= float64(bad)
	})
	took := time.Since(begin)
	d.Stop()
	if n, err := r.stored(customers); err != nil || n != good {
		t.Errorf("%d events stored (%v), want %d", n, err, good)
	}
	if bad > 0 {
		checkDLQ(t, r, bad)
	}
	return took
}

// produceFlood writes the good events and, after every tenth good one
// while any are left, a bad one, with 4 writers at once.
func produceFlood(t *testing.T, r *rig, customers []string, good, bad int) {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	events := make([]event, 0, good+bad)
	for i := range good {
		c := customers[i%len(customers)]
		id := fmt.Sprint("e-", i)
		events = append(events, emailed(id, c, at.Add(time.Duration(i)*time.Millisecond)))
		if j := i / 10; i%10 == 9 && j < bad {
			events = append(events, event{c, poison(j, id, c, at)})
		}
	}
	const chunk = 5000
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			var err error
			for from := g * chunk; from < len(events) && err == nil; from += 4 * chunk {
				err = r.produce(events[from:min(from+chunk, len(events))]...)
			}
			errs <- err
		}()
	}
	var err error
	for range 4 {
		err = cmp.Or(err, <-errs)
	}
	if err != nil {
		t.Fatalf("produce to %s: %v", r.topic, err)
	}
}

// poison returns the j-th bad message, of a customer whose last good
// event has the id last.
func poison(j int, last, customer string, at time.Time) []byte {
	ts := at.UTC().Format(time.RFC3339Nano)
	switch j % 6 {
	case 0:
		return []byte("this is not json " + strconv.Itoa(j))
	case 1:
		return fmt.Appendf(nil, `{"id":"b-%d","type":"contact","customer_id":%q,"at":%q,"channel":"pigeon"}`, j, customer, ts)
	case 2:
		return fmt.Appendf(nil, `{"id":"b-%d","type":"refund","customer_id":%q,"at":%q}`, j, customer, ts)
	case 3:
		return fmt.Appendf(nil, `{"id":"b-%d","type":"purchase","customer_id":%q,"at":%q,"product":"tv","price":5,"currency":"ABC"}`, j, customer, ts)
	case 4:
		return emailed(fmt.Sprint("b-", j), customer, time.Now().Add(30*24*time.Hour)).value
	default: // the id of the good event before it, with other content
		return fmt.Appendf(nil, `{"id":%q,"type":"contact","customer_id":%q,"at":%q,"channel":"sms"}`, last, customer, ts)
	}
}

// checkDLQ reads the dead-letter topic: it must hold n messages, each with
// its reason.
func checkDLQ(t *testing.T, r *rig, n int) {
	t.Helper()
	ends, err := stream.EndOffsets(context.Background(), r.kafka.Brokers, r.dlq)
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	for _, end := range ends {
		held += end
	}
	if held != int64(n) {
		t.Errorf("the dead-letter topic holds %d messages, want %d", held, n)
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: r.kafka.Brokers, Topic: r.dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reasons := map[string]int{}
	for range n {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read the DLQ: %v", err)
		}
		var reason string
		for _, h := range m.Headers {
			if h.Key == stream.HeaderError {
				reason = string(h.Value)
			}
		}
		if reason == "" {
			t.Fatalf("a dead-lettered message without %s: %s", stream.HeaderError, m.Value)
		}
		reason, _, _ = strings.Cut(reason, ":")
		reasons[reason]++
	}
	t.Logf("dead-lettered by reason: %v", reasons)
}
