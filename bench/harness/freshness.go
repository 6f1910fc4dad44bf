package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/stream"
)

// freshFigure is the freshness of one path: from the produce call to
// visible, in ms.
type freshFigure struct {
	Samples int     `json:"samples"`
	Missed  int     `json:"missed"` // not visible within freshTimeout
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

const (
	freshTimeout = 5 * time.Second
	freshPoll    = time.Millisecond
)

func freshOf(lat []time.Duration, missed int) freshFigure {
	slices.Sort(lat)
	f := freshFigure{Samples: len(lat), Missed: missed}
	if len(lat) > 0 {
		q := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		f.P50Ms, f.P99Ms, f.MaxMs = q(0.5), q(0.99), q(1)
	}
	return f
}

// probes records when each probe was produced and seen.
type probes struct {
	mu       sync.Mutex
	produced map[string]time.Time
	fetched  map[string]time.Time
	seen     chan struct{} // closed at the first fetch
	once     sync.Once
}

// freshness is scenario 5: events produced through stream.Producer at a
// steady cfg.FreshRate per second, of which cfg.FreshProbes per second are
// calls to new customers; each probe's customer is checked every
// millisecond over HTTP until the check names the call (recent_contact).
// The baseline is a read-only group reader on the same topic: produce to
// FetchMessage of the same probes, in the same window.
func (e *env) freshness(ctx context.Context) error {
	p := &probes{produced: map[string]time.Time{}, fetched: map[string]time.Time{}, seen: make(chan struct{})}
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	go e.watchProbes(rctx, p)
	producer := stream.NewProducer(e.srv.brokers, e.names.topic)
	defer producer.Close()

	var n atomic.Int64
	probe := func() (string, time.Time, error) {
		id := "fresh-" + e.names.id + "-" + strconv.FormatInt(n.Add(1), 10)
		ev := contact.Event{ID: id, CustomerID: id, At: time.Now(), Type: contact.TypeContact, Channel: contact.Call,
			Agent: "agent-001", Team: "retention", Outcome: "no_answer"}
		if err := ev.Normalize(contact.Defaults{}); err != nil {
			return "", time.Time{}, err
		}
		t0 := time.Now()
		p.mu.Lock()
		p.produced[id] = t0
		p.mu.Unlock()
		return id, t0, producer.Produce(ctx, []contact.Event{ev})
	}
	if err := e.freshWarmUp(ctx, p, probe); err != nil {
		return err
	}

	e.pr.Printf("freshness: %d events/s for %v, %d probes/s", e.cfg.FreshRate, e.cfg.FreshDur, e.cfg.FreshProbes)
	gen := eventgen.New(7, e.cfg.Customers, "fr-"+e.names.id+"-", time.Now(), span)
	const tick = 10 * time.Millisecond
	perTick := max(1, e.cfg.FreshRate/100)
	probeEvery := max(1, 100/e.cfg.FreshProbes) // ticks
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var missed int
	var failed error
	t := time.NewTicker(tick)
	end := time.Now().Add(e.cfg.FreshDur)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		<-t.C
		events := gen.Batch(perTick)
		wg.Go(func() {
			if err := producer.Produce(ctx, events); err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		})
		if i%probeEvery != 0 {
			continue
		}
		wg.Go(func() {
			id, t0, err := probe()
			if err == nil {
				var d time.Duration
				if d, err = e.visible(ctx, id, t0); err == nil {
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			missed++
			failed = err
			mu.Unlock()
		})
	}
	t.Stop()
	wg.Wait()
	if failed != nil && len(lat) == 0 {
		return failed
	}
	time.Sleep(100 * time.Millisecond) // the baseline's last fetches
	stopReader()
	e.res.Freshness.Service = freshOf(lat, missed)
	e.res.Freshness.Kafka = freshOf(p.baseline(), 0)
	e.res.Freshness.Rate = e.cfg.FreshRate
	e.pr.Printf("freshness: outreachd %+v; Kafka produce→fetch %+v", e.res.Freshness.Service, e.res.Freshness.Kafka)
	return nil
}

// freshWarmUp produces probes until the baseline reader has joined and
// outreachd answers.
func (e *env) freshWarmUp(ctx context.Context, p *probes, probe func() (string, time.Time, error)) error {
	e.pr.Printf("freshness: waiting for the baseline group to join")
	deadline := time.Now().Add(45 * time.Second)
	for {
		id, _, err := probe()
		if err != nil {
			return err
		}
		select {
		case <-p.seen:
			_, err := e.visible(ctx, id, time.Now())
			return err
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("freshness: the baseline reader saw no probe within 45s")
		}
	}
}

// baseline is the baseline's latencies: produce to fetch of each probe.
func (p *probes) baseline() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var base []time.Duration
	for id, t1 := range p.fetched {
		if strings.HasPrefix(id, "fresh-") {
			base = append(base, t1.Sub(p.produced[id]))
		}
	}
	return base
}

// watchProbes is the baseline: a group reader that only fetches, from the
// end of the topic, and notes when each probe arrives.
func (e *env) watchProbes(ctx context.Context, p *probes) {
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: e.srv.brokers, GroupID: e.names.group + "-fresh", GroupTopics: []string{e.names.topic},
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond, StartOffset: kafka.LastOffset,
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
	})
	defer rd.Close()
	for {
		m, err := rd.FetchMessage(ctx)
		if err != nil {
			return
		}
		if key := string(m.Key); strings.HasPrefix(key, "fresh-") {
			now := time.Now()
			p.mu.Lock()
			p.fetched[key] = now
			p.mu.Unlock()
			p.once.Do(func() { close(p.seen) })
		}
	}
}

var recentContact = []byte(`"code":"recent_contact"`)

// visible checks the probe's customer every freshPoll until the check
// names the call, and returns the time since t0.
func (e *env) visible(ctx context.Context, id string, t0 time.Time) (time.Duration, error) {
	body := []byte(`{"customer_id":"` + id + `","channel":"call"}`)
	for {
		req, _ := http.NewRequestWithContext(ctx, "POST", e.daemon.url+"/v1/check", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		now := time.Now()
		if err == nil && resp.StatusCode == http.StatusOK && bytes.Contains(b, recentContact) {
			return now.Sub(t0), nil
		}
		if now.Sub(t0) > freshTimeout {
			return 0, fmt.Errorf("freshness: %s not visible after %v (last answer %d %s)", id, freshTimeout, resp.StatusCode, b)
		}
		time.Sleep(freshPoll)
	}
}
