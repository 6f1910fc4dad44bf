package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/internal/testenv"
	"github.com/outreach/outreach/stream"
)

// groupEvents is how many events TestFaultConsumerGroup produces: 200,000
// (OUTREACH_TEST_GROUP_EVENTS sets another number), over a tenth as many
// customers.
func groupEvents(t *testing.T) int {
	t.Helper()
	v := os.Getenv("OUTREACH_TEST_GROUP_EVENTS")
	if v == "" {
		return 200_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		t.Fatalf("OUTREACH_TEST_GROUP_EVENTS=%q: want a number of at least 1000", v)
	}
	return n
}

// TestFaultConsumerGroup runs two outreachd in one consumer group over a
// topic of 12 partitions while events are produced, kills one (SIGKILL) in
// the middle, and starts a third later. Every event is stored exactly once;
// checks answered meanwhile are right or unavailable. It logs the events
// produced, stored and redelivered (absorbed by idempotence), and the
// rebalance pause: from the kill until the dead instance's partitions are
// consumed again.
func TestFaultConsumerGroup(t *testing.T) {
	testenv.RequireRealServers(t)
	start := time.Now()
	total := groupEvents(t)
	customers := make([]string, total/10)
	for i := range customers {
		customers[i] = fmt.Sprint("g-", i)
	}
	shared := testenv.NewSingleRedis(t) // the shared one, whose keys it deletes at cleanup
	r := newRig(t, rigConfig{RedisAddr: shared.Addr, Prefix: shared.Prefix, Brokers: strings.Split(os.Getenv(testenv.KafkaEnv), ","), Partitions: 12})
	p := newProbes(50)
	if err := r.produce(p.optOuts()...); err != nil {
		t.Fatal(err)
	}
	a, b := r.start(), r.start()
	p.waitAnswered(t, a.URL, 30*time.Second)
	p.waitAnswered(t, b.URL, 30*time.Second)
	var mu sync.Mutex
	live := []*testenv.Daemon{a, b}
	urls := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var u []string
		for _, d := range live {
			u = append(u, d.URL)
		}
		return u
	}
	loop := p.loop(urls, 50*time.Millisecond)
	offsets := watchCommits(t, r)

	produced := make(chan error, 1)
	go func() { produced <- produceGroupEvents(r, customers, total) }()
	applied := func(ds ...*testenv.Daemon) float64 {
		var sum float64
		for _, d := range ds {
			v, _ := metric(d.URL, "outreach_events_applied_total")
			sum += v
		}
		return sum
	}
	testenv.Eventually(t, 2*time.Minute, "half the events applied", func() bool { return applied(a, b) >= float64(total/2) })

	// Kill a in the middle, after its last scrape; checks go to b only.
	mu.Lock()
	live = []*testenv.Daemon{b}
	mu.Unlock()
	time.Sleep(100 * time.Millisecond) // the round in flight to a ends
	aApplied, aRedelivered := applied(a), metricOr0(a.URL, "outreach_events_redelivered_total")
	a.Kill()
	killed := time.Now()
	behind := offsets.behind(t, r, killed.Add(200*time.Millisecond))
	resumed := offsets.waitPast(t, behind, 2*time.Minute)
	pause := resumed.Sub(killed)

	time.Sleep(time.Second)
	c := r.start()
	mu.Lock()
	live = append(live, c)
	mu.Unlock()
	// The third instance takes partitions once it has joined the group. On
	// a fast machine the wave may all be consumed before that, so events to
	// customers of their own keep coming until it applies some.
	tr := r.startTrickle(20 * time.Millisecond)
	testenv.Eventually(t, time.Minute, "the third instance applies events (it takes partitions)", func() bool { return applied(c) > 0 })
	trickled := tr.Stop()
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	producedAt := time.Since(start)
	r.waitStored(customers, total, 3*time.Minute)
	storedAt := time.Since(start)
	v := tally(loop.Stop())
	v.mustBeSafe(t, true)

	sumApplied := aApplied + applied(b, c)
	redelivered := aRedelivered + metricOr0(b.URL, "outreach_events_redelivered_total") + metricOr0(c.URL, "outreach_events_redelivered_total")
	cApplied := applied(c)
	if redelivered == 0 {
		t.Errorf("no redelivery counted after a kill -9 mid-stream: outreach_events_redelivered_total does not count them")
	}
	t.Logf("%d events over %d customers on 12 partitions: produced %d, stored %d (each once), lost 0; "+
		"redelivered and absorbed %v (outreach_events_redelivered_total); applied %v in all (%v by the killed instance before its kill, %v by the third), %d trickled for the third, "+
		"applied minus stored %v; rebalance pause: the killed instance's partitions were consumed again %v after the kill; "+
		"all produced after %v, all stored after %v; checks during the rebalance: %v; test took %v",
		total, len(customers), total, total, redelivered, sumApplied, aApplied, cApplied, trickled, sumApplied-float64(total+len(p.optOuts())+trickled),
		pause.Round(time.Millisecond), producedAt.Round(time.Millisecond), storedAt.Round(time.Millisecond), v, time.Since(start).Round(time.Millisecond))
}

func metricOr0(url, name string) float64 {
	v, _ := metric(url, name)
	return v
}

// produceGroupEvents writes 10 events to each customer, interleaved, in
// chunks of 5,000 written by 4 writers at once.
func produceGroupEvents(r *rig, customers []string, total int) error {
	at := time.Now().Add(-time.Hour)
	const chunk = 5000
	starts := make(chan int)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			var err error
			for from := range starts {
				batch := make([]event, 0, chunk)
				for i := from; i < min(from+chunk, total); i++ {
					c := customers[i%len(customers)]
					batch = append(batch, emailed(fmt.Sprintf("%s-%d", c, i/len(customers)), c, at.Add(time.Duration(i)*time.Millisecond)))
				}
				if err == nil {
					err = r.produce(batch...)
				}
			}
			errs <- err
		}()
	}
	for from := 0; from < total; from += chunk {
		starts <- from
	}
	close(starts)
	var err error
	for range 4 {
		err = cmp.Or(err, <-errs)
	}
	return err
}

// commits watches the committed offsets of a rig's group, every 100ms.
type commits struct {
	mu      sync.Mutex
	samples []commitSample
}

type commitSample struct {
	at      time.Time
	offsets map[int]int64 // by partition
}

func watchCommits(t *testing.T, r *rig) *commits {
	c := &commits{}
	cl := &kafka.Client{Addr: kafka.TCP(r.kafka.Brokers...), Timeout: 5 * time.Second}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: r.group,
				Topics: map[string][]int{r.topic: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}})
			if err == nil {
				s := commitSample{at: time.Now(), offsets: map[int]int64{}}
				for _, p := range resp.Topics[r.topic] {
					s.offsets[p.Partition] = p.CommittedOffset
				}
				c.mu.Lock()
				c.samples = append(c.samples, s)
				c.mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	return c
}

// behind returns the committed offsets, read after since, of the
// partitions that have messages past them.
func (c *commits) behind(t *testing.T, r *rig, since time.Time) map[int]int64 {
	t.Helper()
	var after commitSample
	testenv.Eventually(t, 10*time.Second, "committed offsets read", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if n := len(c.samples); n > 0 && c.samples[n-1].at.After(since) {
			after = c.samples[n-1]
			return true
		}
		return false
	})
	ends, err := stream.EndOffsets(context.Background(), r.kafka.Brokers, r.topic)
	if err != nil {
		t.Fatal(err)
	}
	behind := map[int]int64{}
	for p, off := range after.offsets {
		if off < ends[stream.Position{Topic: r.topic, Partition: p}] {
			behind[p] = off
		}
	}
	return behind
}

// waitPast waits until the committed offset of every partition of before
// has moved past its value there, and returns when the last one did.
func (c *commits) waitPast(t *testing.T, before map[int]int64, timeout time.Duration) time.Time {
	t.Helper()
	var when time.Time
	testenv.Eventually(t, timeout, "every partition consumed again", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		moved := map[int]time.Time{}
		for _, s := range c.samples {
			for p, off := range s.offsets {
				last, watched := before[p]
				if _, ok := moved[p]; watched && !ok && off > last {
					moved[p] = s.at
				}
			}
		}
		if len(moved) < len(before) {
			return false
		}
		when = slices.MaxFunc(slices.Collect(maps.Values(moved)), time.Time.Compare)
		return true
	})
	return when
}
