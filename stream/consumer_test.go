package stream_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

type fixture struct {
	kafka    *testenv.Kafka
	redis    *testenv.Redis
	store    *redis.Store
	topic    string
	dlq      string
	consumer *stream.Consumer
}

// start runs a consumer over a fresh topic; redisAddr, if not empty, is
// where the store connects instead of the test Redis (a proxy to it).
func start(t *testing.T, redisAddr string) *fixture {
	t.Helper()
	return startWith(t, redisAddr, nil)
}

// startWith is start with the store wrapped by wrap, if not nil.
func startWith(t *testing.T, redisAddr string, wrap func(stream.Applier) stream.Applier) *fixture {
	t.Helper()
	f := &fixture{kafka: testenv.NewKafka(t), redis: testenv.NewRedis(t)}
	f.topic = f.kafka.Topic(t, "events", 3)
	f.dlq = f.kafka.Topic(t, "dlq", 1)
	client := f.redis.Client
	if redisAddr != "" {
		client = goredis.NewClient(&goredis.Options{Addr: redisAddr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { client.Close() })
	}
	f.store = redis.New(client, redis.Options{Prefix: f.redis.Prefix})
	var applier stream.Applier = f.store
	if wrap != nil {
		applier = wrap(f.store)
	}
	c, err := stream.NewConsumer(stream.ConsumerConfig{
		Brokers: f.kafka.Brokers, Topics: []string{f.topic}, Group: "g-" + testenv.Unique(t), DLQTopic: f.dlq,
		MaxAttempts: 3,
	}, applier)
	if err != nil {
		t.Fatal(err)
	}
	f.consumer = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f
}

func event(id, customer string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"contact","customer_id":%q,"at":%q,"channel":"call","agent":"a.jones"}`,
		id, customer, at.Format(time.RFC3339Nano))
}

func (f *fixture) timeline(t *testing.T, customer string) []contact.Event {
	t.Helper()
	events, _, err := f.store.Timeline(context.Background(), customer, contact.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// waitFor waits until the customer's timeline holds n events.
func (f *fixture) waitFor(t *testing.T, customer string, n int) []contact.Event {
	t.Helper()
	var events []contact.Event
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d events for %s", n, customer), func() bool {
		events = f.timeline(t, customer)
		return len(events) >= n
	})
	return events
}

func TestDuplicateDeliveryStoredOnce(t *testing.T) {
	t.Parallel()
	f := start(t, "")
	at := time.Now().Add(-time.Hour)
	f.kafka.Produce(t, f.topic, "c1", event("e1", "c1", at), event("e1", "c1", at), event("e2", "c1", at.Add(time.Minute)))
	f.kafka.Produce(t, f.topic, "c1", event("e1", "c1", at))
	f.kafka.Produce(t, f.topic, "c1", event("marker", "c1", at.Add(2*time.Minute)))
	events := f.waitFor(t, "c1", 3)
	if len(events) != 3 {
		t.Fatalf("timeline has %d events, want 3: %v", len(events), events)
	}
}

func TestOutOfOrderArrivalIsSorted(t *testing.T) {
	t.Parallel()
	f := start(t, "")
	base := time.Now().Add(-time.Hour)
	for _, i := range []int{3, 1, 4, 0, 2} {
		f.kafka.Produce(t, f.topic, "c1", event(fmt.Sprint("e", i), "c1", base.Add(time.Duration(i)*time.Minute)))
	}
	events := f.waitFor(t, "c1", 5)
	for i, e := range events {
		if want := fmt.Sprint("e", 4-i); e.ID != want {
			t.Errorf("events[%d] = %s, want %s", i, e.ID, want)
		}
	}
}

func TestPoisonMessagesGoToTheDLQ(t *testing.T) {
	t.Parallel()
	f := start(t, "")
	at := time.Now().Add(-time.Hour)
	poison := map[string][]byte{
		"not json":      []byte("this is not json"),
		"invalid":       []byte(`{"id":"p2","type":"contact","customer_id":"c1","at":"2026-01-01T00:00:00Z","channel":"pigeon"}`),
		"unknown type":  []byte(`{"id":"p3","type":"refund","customer_id":"c1","at":"2026-01-01T00:00:00Z"}`),
		"bad time":      []byte(`{"id":"p4","type":"contact","customer_id":"c1","at":"yesterday","channel":"call"}`),
		"bad currency":  []byte(`{"id":"p5","type":"purchase","customer_id":"c1","at":"2026-01-01T00:00:00Z","product":"tv","price":5,"currency":"ABC"}`),
		"far future":    event("p6", "c1", time.Now().Add(30*24*time.Hour)),
		"invalid utf-8": []byte("{\"id\":\"p7\",\"type\":\"contact\",\"customer_id\":\"c1\",\"at\":\"2026-01-01T00:00:00Z\",\"channel\":\"call\",\"agent\":\"b.l\xffe\"}"),
		"year 9999":     []byte(`{"id":"p8","type":"contact","customer_id":"c1","at":"9999-12-31T23:59:59Z","channel":"call"}`),
		"before 1970":   []byte(`{"id":"p9","type":"contact","customer_id":"c1","at":"1969-12-31T23:59:59Z","channel":"call"}`),
		"offer in 9999": []byte(`{"id":"p10","type":"contact","customer_id":"c1","at":"2026-01-01T00:00:00Z","channel":"email","offer":{"price":5,"expires_at":"9999-01-01T00:00:00Z"}}`),
		// The same id as "good" with other content: the first version stands.
		"id conflict": fmt.Appendf(nil, `{"id":"good","type":"contact","customer_id":"c1","at":%q,"channel":"sms"}`, at.Format(time.RFC3339Nano)),
	}
	f.kafka.Produce(t, f.topic, "c1", event("good", "c1", at))
	for name, v := range poison {
		if name != "id conflict" {
			f.kafka.Produce(t, f.topic, "c1", v)
		}
	}
	f.kafka.Produce(t, f.topic, "c1", poison["id conflict"])
	f.kafka.Produce(t, f.topic, "c1", event("good", "c1", at)) // a redelivery is not a conflict
	f.kafka.Produce(t, f.topic, "c1", event("marker", "c1", at.Add(time.Minute)))
	events := f.waitFor(t, "c1", 2)

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.kafka.Brokers, Topic: f.dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]kafka.Message{}
	for len(got) < len(poison) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Errorf("read DLQ after %d messages: %v", len(got), err)
			break
		}
		got[string(m.Value)] = m
	}
	wantField := map[string]string{"not json": "", "invalid": "channel", "unknown type": "type", "bad time": "at",
		"bad currency": "currency", "far future": "at", "id conflict": "id",
		"invalid utf-8": "agent", "year 9999": "at", "before 1970": "at", "offer in 9999": "offer.expires_at"}
	wantReason := map[string]string{"far future": "OUTREACH_MAX_FUTURE", "invalid utf-8": "valid UTF-8",
		"year 9999": "years from now", "before 1970": "from the year 1970 on", "offer in 9999": "years from now"}
	for name, v := range poison {
		m, ok := got[string(v)]
		if !ok {
			t.Errorf("%s: not in the DLQ", name)
			continue
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h[stream.HeaderError] == "" {
			t.Errorf("%s: no %s header", name, stream.HeaderError)
		}
		if !strings.Contains(h[stream.HeaderError], wantReason[name]) {
			t.Errorf("%s: reason %q, want it to say %q", name, h[stream.HeaderError], wantReason[name])
		}
		if h[stream.HeaderField] != wantField[name] {
			t.Errorf("%s: field header %q, want %q", name, h[stream.HeaderField], wantField[name])
		}
		if h[stream.HeaderTopic] != f.topic || h[stream.HeaderOffset] == "" {
			t.Errorf("%s: origin headers %v", name, h)
		}
	}
	if h := headers(got[string(poison["id conflict"])]); !strings.HasPrefix(h[stream.HeaderError], stream.ReasonIDConflict+": ") {
		t.Errorf("id conflict reason = %q", h[stream.HeaderError])
	}
	if len(events) != 2 || events[1].ID != "good" || events[1].Channel != contact.Call {
		t.Errorf("timeline = %+v, want marker and the first version of good", events)
	}
}

func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

func TestRedisDownMidStreamLosesNothing(t *testing.T) {
	t.Parallel()
	r := testenv.NewSingleRedis(t) // the proxy fronts one server
	proxy := testenv.NewProxy(t, r.Addr)
	f := start(t, proxy.Addr)
	base := time.Now().Add(-time.Hour)
	const n = 40
	for i := range n / 2 {
		f.kafka.Produce(t, f.topic, "c1", event(fmt.Sprint("e", i), "c1", base.Add(time.Duration(i)*time.Second)))
	}
	f.waitFor(t, "c1", n/2)

	proxy.Down()
	for i := n / 2; i < n; i++ {
		f.kafka.Produce(t, f.topic, "c1", event(fmt.Sprint("e", i), "c1", base.Add(time.Duration(i)*time.Second)))
	}
	testenv.Eventually(t, 30*time.Second, "the consumer reports the outage", func() bool {
		return f.consumer.Healthy(context.Background()) != nil
	})
	if _, _, err := f.store.Timeline(context.Background(), "c1", contact.Page{Limit: 1}); contact.ErrorCode(err) != contact.EUnavailable {
		t.Errorf("Timeline with Redis down: %v, want unavailable", err)
	}

	proxy.Up(t)
	events := f.waitFor(t, "c1", n)
	if len(events) != n {
		t.Errorf("timeline has %d events after the outage, want %d", len(events), n)
	}
	testenv.Eventually(t, 10*time.Second, "the consumer is healthy again", func() bool {
		return f.consumer.Healthy(context.Background()) == nil
	})
}

func TestNewConsumerNamesMissingSettings(t *testing.T) {
	_, err := stream.NewConsumer(stream.ConsumerConfig{}, nil)
	if err == nil {
		t.Fatal("NewConsumer with no config: nil error")
	}
	for _, want := range []string{"brokers", "topics", "group", "dead-letter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// refusing is a store that refuses the event with a given id, every time,
// as Redis refuses a command on a key of the wrong type, and counts the
// attempts.
type refusing struct {
	stream.Applier
	id       string
	attempts atomic.Int64
}

func (r *refusing) Apply(ctx context.Context, events []contact.Event) ([]error, error) {
	var keep []contact.Event
	idx := -1
	for i, e := range events {
		if e.ID == r.id {
			idx = i
			r.attempts.Add(1)
			continue
		}
		keep = append(keep, e)
	}
	errs, err := r.Applier.Apply(ctx, keep)
	if err != nil || idx < 0 {
		return errs, err
	}
	errs = slices.Insert(errs, idx, error(&contact.Error{Code: contact.EInternal, Message: "the store refused the event",
		Err: errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")}))
	return errs, nil
}

// TestPoisonEventDoesNotBlockItsPartition: an event the store refuses every
// time goes to the dead-letter topic after MaxAttempts, and the events
// behind it are applied.
func TestPoisonEventDoesNotBlockItsPartition(t *testing.T) {
	t.Parallel()
	poison := &refusing{id: "poison"}
	f := startWith(t, "", func(a stream.Applier) stream.Applier { poison.Applier = a; return poison })
	at := time.Now().Add(-time.Hour)
	f.kafka.Produce(t, f.topic, "c1", event("poison", "c1", at), event("after", "c1", at.Add(time.Minute)))
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.kafka.Brokers, Topic: f.dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := poison.attempts.Load(); n != 3 {
		t.Errorf("the poison event was tried %d times, want MaxAttempts (3)", n)
	}
	events := f.waitFor(t, "c1", 1)
	if len(events) != 1 || events[0].ID != "after" {
		t.Fatalf("timeline = %v, want the event after the poison", events)
	}
	if h := headers(m); !strings.HasPrefix(h[stream.HeaderError], stream.ReasonApplyFailed+": ") || !strings.Contains(string(m.Value), `"poison"`) {
		t.Errorf("dead letter %s with headers %v", m.Value, h)
	}
}

// TestHealthyNoticesKafkaGone: once Kafka is gone, a consumer whose fetch
// failed stays unhealthy: the check asks a broker, never a cache of its
// metadata, which kafka-go's transport keeps answering from when every
// broker is down.
func TestHealthyNoticesKafkaGone(t *testing.T) {
	t.Parallel()
	f := start(t, "")
	f.kafka.Produce(t, f.topic, "c1", event("e1", "c1", time.Now().Add(-time.Hour)))
	f.waitFor(t, "c1", 1)
	ctx := context.Background()
	if err := stream.Ping(ctx, f.kafka.Brokers); err != nil {
		t.Fatalf("Ping with Kafka up: %v", err)
	}
	if !f.kafka.Real() {
		f.kafka.Fake.Close()
	} else {
		t.Skip("stops the broker; kfake only (the fault tests stop a real one)")
	}
	if err := stream.Ping(ctx, f.kafka.Brokers); err == nil {
		t.Error("Ping with Kafka gone = nil, want an error")
	}
	testenv.Eventually(t, 30*time.Second, "the consumer unhealthy with Kafka gone", func() bool {
		return f.consumer.Healthy(ctx) != nil
	})
}
