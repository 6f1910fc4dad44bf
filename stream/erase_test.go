package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

func forget(id, customer string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"forget","customer_id":%q,"at":%q}`, id, customer, at.Format(time.RFC3339Nano))
}

// TestErasureSurvivesAReplay: a customer erased, then the whole topic
// replayed by a new consumer group: nothing of the history comes back, the
// bare opt-out stays, and each event dropped is counted in
// outreach_events_erased_total.
func TestErasureSurvivesAReplay(t *testing.T) {
	t.Parallel()
	f := start(t, "")
	at := time.Now().Add(-time.Hour)
	f.kafka.Produce(t, f.topic, "c1",
		event("k1", "c1", at),
		fmt.Appendf(nil, `{"id":"o1","type":"opt_out","customer_id":"c1","at":%q,"channel":"sms","reason":"stop texting me"}`, at.Format(time.RFC3339Nano)),
		fmt.Appendf(nil, `{"id":"x1","type":"complaint","customer_id":"c1","at":%q,"case_id":"77","summary":"rude agent"}`, at.Format(time.RFC3339Nano)),
		fmt.Appendf(nil, `{"id":"p1","type":"purchase","customer_id":"c1","at":%q,"product":"tv"}`, at.Format(time.RFC3339Nano)),
		forget("f1", "c1", at.Add(time.Minute)),
		event("m1", "marker", at))
	f.waitFor(t, "marker", 1)
	assertErased(t, f.store, "c1")

	// Replay the whole topic from its start, in a new group.
	ends, err := stream.EndOffsets(context.Background(), f.kafka.Brokers, f.topic)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := stream.NewConsumer(stream.ConsumerConfig{
		Brokers: f.kafka.Brokers, Topics: []string{f.topic}, Group: "replay-" + testenv.Unique(t), DLQTopic: f.dlq, Until: ends,
		Metrics: stream.NewMetrics(reg),
	}, f.store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-c.CaughtUp():
	case <-time.After(30 * time.Second):
		t.Fatal("the replay did not catch up in 30s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	assertErased(t, f.store, "c1")
	// k1, o1, x1 and p1 are dated before the erasure; f1 erases again, and
	// m1 is another customer's.
	erased, applied := counterValue(reg, "outreach_events_erased_total"), counterValue(reg, "outreach_events_applied_total")
	if erased != 4 || applied != 2 {
		t.Errorf("the replay counted %v events erased and %v applied, want 4 and 2", erased, applied)
	}
}

func assertErased(t *testing.T, s *redis.Store, customer string) {
	t.Helper()
	events, st, err := s.Timeline(context.Background(), customer, contact.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 0 {
		t.Errorf("the erased history came back: %v", events)
	}
	if len(st.Purchases) != 0 || len(st.OpenComplaints()) != 0 || len(st.LastContacts) != 0 {
		t.Errorf("the erased state came back: %+v", st)
	}
	out, ok := st.OptOutInForce(contact.SMS)
	if !ok || out.Reason != "" || out.ID != redis.ErasedID {
		t.Errorf("the opt-out after the erasure = %+v, %v; want a bare flag", out, ok)
	}
}

// TestErasureWhileEventsArrive: events keep arriving around an erasure;
// those dated up to it are dropped, even when they arrive after it, and
// those dated after it are kept.
func TestErasureWhileEventsArrive(t *testing.T) {
	t.Parallel()
	f := start(t, "")
	erasedAt := time.Now().Add(-time.Minute)
	var before, after [][]byte
	for i := range 20 {
		before = append(before, event(fmt.Sprint("b", i), "c1", erasedAt.Add(-time.Duration(i+1)*time.Second)))
		after = append(after, event(fmt.Sprint("a", i), "c1", erasedAt.Add(time.Duration(i+1)*time.Millisecond)))
	}
	f.kafka.Produce(t, f.topic, "c1", before[:10]...)
	f.kafka.Produce(t, f.topic, "c1", forget("f1", "c1", erasedAt))
	// Late events of before the erasure, mixed with new ones.
	for i := range 10 {
		f.kafka.Produce(t, f.topic, "c1", before[10+i], after[i])
	}
	f.kafka.Produce(t, f.topic, "c1", after[10:]...)
	events := f.waitFor(t, "c1", 20)
	time.Sleep(200 * time.Millisecond)
	events = f.timeline(t, "c1")
	for _, e := range events {
		if e.At.After(erasedAt) {
			continue
		}
		t.Errorf("event %s, dated before the erasure, is stored", e.ID)
	}
	if len(events) != 20 {
		t.Errorf("%d events stored, want the 20 dated after the erasure", len(events))
	}
}
