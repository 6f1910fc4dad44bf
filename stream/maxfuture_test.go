package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/stream"
)

// TestMaxFutureBoundary: an event dated OUTREACH_MAX_FUTURE after its
// message was written is applied; one a millisecond later is dead-lettered,
// naming at and the setting; consumption goes on after it.
func TestMaxFutureBoundary(t *testing.T) {
	t.Parallel()
	f := start(t, "")
	written := time.Now().Add(-time.Hour).Truncate(time.Millisecond) // Kafka keeps milliseconds
	inside := event("inside", "c1", written.Add(stream.DefaultMaxFuture))
	beyond := event("beyond", "c1", written.Add(stream.DefaultMaxFuture+time.Millisecond))

	w := &kafka.Writer{Addr: kafka.TCP(f.kafka.Brokers...), Topic: f.topic, Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := w.WriteMessages(ctx,
		kafka.Message{Key: []byte("c1"), Value: inside, Time: written},
		kafka.Message{Key: []byte("c1"), Value: beyond, Time: written},
		kafka.Message{Key: []byte("c1"), Value: event("marker", "c1", written.Add(-time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "c1", 2)
	var got []string
	for _, e := range f.timeline(t, "c1") {
		got = append(got, e.ID)
	}
	if strings.Join(got, ",") != "inside,marker" {
		t.Errorf("timeline = %v, want inside and marker", got)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.kafka.Brokers, Topic: f.dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("read DLQ: %v", err)
	}
	h := headers(m)
	if string(m.Value) != string(beyond) || h[stream.HeaderField] != "at" || !strings.Contains(h[stream.HeaderError], "OUTREACH_MAX_FUTURE") {
		t.Errorf("dead-lettered %s with field %q, reason %q; want beyond, at, naming OUTREACH_MAX_FUTURE", m.Value, h[stream.HeaderField], h[stream.HeaderError])
	}
	// Nothing else is dead-lettered.
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if m, err := r.ReadMessage(short); err == nil {
		t.Errorf("also dead-lettered: %s", m.Value)
	}
}
