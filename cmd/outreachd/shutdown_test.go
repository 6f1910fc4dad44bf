package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/internal/testenv"
)

// TestFaultSigtermUnderLoad stops outreachd with SIGTERM while it consumes
// a backlog and answers checks. Requests in flight complete (some of them
// still sending their bodies when the signal comes), the batch in flight is
// committed (every stored event's offset is committed, so a restart
// redelivers nothing), and the process exits 0 within
// OUTREACH_SHUTDOWN_TIMEOUT.
func TestFaultSigtermUnderLoad(t *testing.T) {
	testenv.RequireRealServers(t)
	const shutdownTimeout = 10 * time.Second
	start := time.Now()
	shared := testenv.NewSingleRedis(t)
	r := newRig(t, rigConfig{RedisAddr: shared.Addr, Prefix: shared.Prefix, Brokers: strings.Split(os.Getenv(testenv.KafkaEnv), ",")})
	p := newProbes(10)
	if err := r.produce(p.optOuts()...); err != nil {
		t.Fatal(err)
	}
	const total = 60_000
	customers := make([]string, total/10)
	for i := range customers {
		customers[i] = fmt.Sprint("s-", i)
	}
	if err := produceGroupEvents(r, customers, total); err != nil {
		t.Fatal(err)
	}
	d := r.start("OUTREACH_SHUTDOWN_TIMEOUT=" + shutdownTimeout.String())
	p.waitAnswered(t, d.URL, 30*time.Second)

	load := p.loop(func() []string { return []string{d.URL} }, 5*time.Millisecond)
	defer load.Stop()
	testenv.Eventually(t, time.Minute, "the consumer busy with the backlog", func() bool {
		n, _ := metric(d.URL, "outreach_events_applied_total")
		return n > total/10
	})
	slow := make([]*slowRequest, 5)
	for i := range slow {
		slow[i] = startSlowCheck(t, d.URL, p.customers[0])
	}
	time.Sleep(200 * time.Millisecond) // their headers are read: they are in flight

	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signaled := time.Now()
	time.Sleep(300 * time.Millisecond)
	for _, s := range slow {
		s.finish()
	}
	code := d.Wait(shutdownTimeout + 5*time.Second)
	exited := time.Since(signaled)
	rounds := load.Stop()

	for i, s := range slow {
		if status, body := s.result(); status != 200 || !strings.Contains(body, `"opted_out"`) {
			t.Errorf("request %d, in flight at SIGTERM: %d %s, want 200 with the opt-out", i, status, body)
		}
	}
	if code != 0 || exited > shutdownTimeout {
		t.Errorf("outreachd exited %d after %v, want 0 within %v", code, exited, shutdownTimeout)
	}
	stored, err := r.stored(append(customers, p.customers...))
	if err != nil {
		t.Fatal(err)
	}
	committed := committedOffsets(t, r)
	if int64(stored) != committed {
		t.Errorf("%d events stored but %d offsets committed: the batch in flight was not committed", stored, committed)
	}
	var answered, failed, after int
	for _, rd := range rounds {
		switch {
		case rd.status == 200:
			answered++
		case rd.status >= 500:
			t.Errorf("a check answered %d during the shutdown", rd.status)
		case rd.at.After(signaled):
			after++ // refused: the server no longer listens
		default:
			failed++
		}
	}
	t.Logf("SIGTERM with %d of %d events stored: exit %d after %v (timeout %v); %d requests in flight completed; "+
		"%d events stored and %d offsets committed; load: %d checks answered, %d refused after the signal, %d failed before it; test took %v",
		stored-len(p.optOuts()), total, code, exited.Round(time.Millisecond), shutdownTimeout, len(slow),
		stored, committed, answered, after, failed, time.Since(start).Round(time.Millisecond))
}

// committedOffsets sums the offsets the rig's group has committed.
func committedOffsets(t *testing.T, r *rig) int64 {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(r.kafka.Brokers...), Timeout: 10 * time.Second}
	resp, err := cl.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: r.group, Topics: map[string][]int{r.topic: {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range resp.Topics[r.topic] {
		sum += max(0, p.CommittedOffset)
	}
	return sum
}

// slowRequest is a check whose body is sent in two parts, the second only
// when finish is called: the server has its headers and waits for the rest.
type slowRequest struct {
	w      *io.PipeWriter
	rest   string
	mu     sync.Mutex
	done   chan struct{}
	status int
	body   string
}

func startSlowCheck(t *testing.T, url, customer string) *slowRequest {
	pr, pw := io.Pipe()
	body := fmt.Sprintf(`{"customer_id":%q,"channel":"call"}`, customer)
	s := &slowRequest{w: pw, rest: body[10:], done: make(chan struct{})}
	req, _ := http.NewRequest("POST", url+"/v1/check", pr)
	req.Header.Set("Authorization", "Bearer "+dialerKey)
	req.Header.Set("Content-Type", "application/json")
	go func() {
		defer close(s.done)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.body = err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		s.status, s.body = resp.StatusCode, string(b)
	}()
	go pw.Write([]byte(body[:10]))
	t.Cleanup(func() { pw.Close() })
	return s
}

func (s *slowRequest) finish() {
	go func() {
		s.w.Write([]byte(s.rest))
		s.w.Close()
	}()
}

func (s *slowRequest) result() (int, string) {
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		return 0, "no answer"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.body
}
