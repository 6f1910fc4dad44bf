package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// TestFaultKafkaBrokerRestarted: the Kafka broker (one of the test's own)
// stops and starts again on its data. Meanwhile checks go on and
// /readyz?role=api stays 200; POST /v1/events answers 503 naming Kafka,
// and never 202 for an event Kafka did not take; /readyz?role=ingest says
// 503. Once the broker is back, /readyz and /readyz?role=ingest return to
// 200 on a quiet topic, and the consumer resumes by itself.
func TestFaultKafkaBrokerRestarted(t *testing.T) {
	testenv.RequireRealServers(t)
	start := time.Now()
	broker := testenv.StartKafkaBroker(t)
	brokerUp := time.Since(start)
	// A check timeout well above the 300ms default: a broker starting up
	// takes both cores of a small machine, and a check that times out then
	// is not what this test is about.
	shared := testenv.NewSingleRedis(t)
	r := newRig(t, rigConfig{RedisAddr: shared.Addr, Prefix: shared.Prefix, Brokers: []string{broker.Addr}, Env: []string{"OUTREACH_CHECK_TIMEOUT=2s"}})
	d := r.start()
	p := newProbes(10)
	if err := r.produce(p.optOuts()...); err != nil {
		t.Fatal(err)
	}
	p.waitAnswered(t, d.URL, 30*time.Second)
	waitReady(t, d, "", 200, 30*time.Second)
	loop := p.loop(func() []string { return []string{d.URL} }, 50*time.Millisecond)
	api := watchReady(t, d, "?role=api")
	posts := &poster{url: d.URL}
	if status, body := posts.post(); status != 202 {
		t.Fatalf("POST /v1/events with Kafka up = %d %s", status, body)
	}

	broker.Stop(t)
	stopped := time.Now()
	waitReady(t, d, "?role=ingest", 503, 30*time.Second)
	ingestDown := time.Since(stopped)
	if status, _ := readyz(d.URL, ""); status != 503 {
		t.Errorf("/readyz with Kafka down = %d, want 503", status)
	}
	var slowest time.Duration
	for time.Since(stopped) < 5*time.Second {
		before := time.Now()
		status, body := posts.post()
		slowest = max(slowest, time.Since(before))
		if status == 202 {
			continue // Kafka took it before it stopped: it must be stored
		}
		if status != 503 || !strings.Contains(body, `"code":"unavailable"`) || !strings.Contains(body, "kafka") {
			t.Fatalf("POST /v1/events with Kafka down = %d %s, want 503 unavailable naming kafka", status, body)
		}
	}

	broker.Restart(t)
	restarted := time.Now()
	waitReady(t, d, "?role=ingest", 200, 60*time.Second)
	waitReady(t, d, "", 200, 10*time.Second)
	ready := time.Since(restarted)

	// The consumer resumes by itself: events sent now are stored.
	for range 5 {
		if status, body := posts.post(); status != 202 {
			t.Fatalf("POST /v1/events after the broker came back = %d %s", status, body)
		}
	}
	r.waitStored(posts.customers(), len(posts.accepted), 60*time.Second)
	resumed := time.Since(restarted)
	v := tally(loop.Stop())
	v.mustBeSafe(t, true)
	if v.unavailable > 0 {
		t.Errorf("%d checks unavailable during a Kafka outage, want none: checks need Redis only", v.unavailable)
	}
	if bad := api.Stop(); len(bad) > 0 {
		t.Errorf("/readyz?role=api left 200 during the Kafka outage: %v", bad[:min(3, len(bad))])
	}
	t.Logf("broker up in %v; stopped for %v: /readyz?role=ingest 503 after %v; %d POST /v1/events answered 503 "+
		"(slowest %v), %d answered 202 and all were stored; after the restart /readyz was 200 after %v on a quiet topic, "+
		"and new events were stored after %v; checks: %v; /readyz?role=api 200 throughout; test took %v",
		brokerUp.Round(time.Millisecond), restarted.Sub(stopped).Round(time.Millisecond), ingestDown.Round(time.Millisecond),
		posts.refused, slowest.Round(time.Millisecond), len(posts.accepted), ready.Round(time.Millisecond),
		resumed.Round(time.Millisecond), v, time.Since(start).Round(time.Millisecond))
}

// poster sends one new event at a time to POST /v1/events and remembers
// which were accepted.
type poster struct {
	url      string
	n        int
	accepted []string // customers of the accepted events, one per event
	refused  int
}

func (p *poster) post() (int, string) {
	p.n++
	c := fmt.Sprint("posted-", p.n)
	at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	status, body := post(p.url+"/v1/events", dialerKey,
		fmt.Sprintf(`{"id":"post-%d","type":"contact","customer_id":%q,"at":%q,"channel":"email"}`, p.n, c, at))
	if status == 202 {
		p.accepted = append(p.accepted, c)
	} else {
		p.refused++
	}
	return status, body
}

func (p *poster) customers() []string { return p.accepted }

// readyWatch polls a /readyz every 100ms and keeps the answers that were
// not 200.
type readyWatch struct {
	mu   sync.Mutex
	bad  []string
	stop chan struct{}
	done chan struct{}
}

func watchReady(t *testing.T, d *testenv.Daemon, q string) *readyWatch {
	w := &readyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if status, body := readyz(d.URL, q); status != 200 {
				w.mu.Lock()
				w.bad = append(w.bad, fmt.Sprintf("%s: %d %s", time.Now().Format(time.StampMilli), status, body))
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { w.Stop() })
	return w
}

// Stop ends the watch and returns the answers that were not 200.
func (w *readyWatch) Stop() []string {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad
}
