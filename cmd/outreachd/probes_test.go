package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// probes are customers whose right answers are known: the opted-out ones
// must never be allowed, and the others, without any event, must be
// allowed. Either may answer unavailable.
type probes struct {
	customers []string
	optedOut  []bool
}

func newProbes(n int) probes {
	var p probes
	for i := range n {
		p.customers = append(p.customers, fmt.Sprint("out-", i), fmt.Sprint("ok-", i))
		p.optedOut = append(p.optedOut, true, false)
	}
	return p
}

// optOuts are the events that make the opted-out probes so.
func (p probes) optOuts() []event {
	var events []event
	for i, c := range p.customers {
		if p.optedOut[i] {
			events = append(events, optOut("o-"+c, c))
		}
	}
	return events
}

// round is one batch check of every probe.
type round struct {
	at, end     time.Time
	status      int
	err         error
	unavailable []bool   // by probe
	reasons     []string // the message of each unavailable probe's reason
	wrong       []string // answers that are neither right nor unavailable
}

func (rd round) allAnswered() bool { return rd.status == 200 && !slices.Contains(rd.unavailable, true) }

func (rd round) allUnavailable() bool {
	return rd.status == 200 && !slices.Contains(rd.unavailable, false)
}

var checkClient = &http.Client{Timeout: 10 * time.Second}

// check asks url for every probe in one batch.
func (p probes) check(url string) round {
	var b strings.Builder
	b.WriteString(`{"checks":[`)
	for i, c := range p.customers {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"customer_id":%q,"channel":"call"}`, c)
	}
	b.WriteString(`]}`)
	rd := round{at: time.Now()}
	req, _ := http.NewRequest("POST", url+"/v1/check/batch", strings.NewReader(b.String()))
	req.Header.Set("Authorization", "Bearer "+dialerKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := checkClient.Do(req)
	rd.end = time.Now()
	if err != nil {
		rd.err = err
		return rd
	}
	defer resp.Body.Close()
	rd.status = resp.StatusCode
	var body struct {
		Results []struct {
			CustomerID string `json:"customer_id"`
			Allowed    bool   `json:"allowed"`
			Reasons    []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"reasons"`
		} `json:"results"`
	}
	if rd.status != 200 {
		return rd
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Results) != len(p.customers) {
		rd.err = fmt.Errorf("batch answer: %v, %d results", err, len(body.Results))
		return rd
	}
	rd.unavailable = make([]bool, len(p.customers))
	rd.reasons = make([]string, len(p.customers))
	for i, res := range body.Results {
		var codes []string
		for _, r := range res.Reasons {
			codes = append(codes, r.Code)
			if r.Code == "unavailable" {
				rd.reasons[i] = r.Message
			}
		}
		got := strings.Join(codes, ",")
		switch {
		case got == "unavailable" && !res.Allowed:
			rd.unavailable[i] = true
		case p.optedOut[i] && !res.Allowed && slices.Contains(codes, "opted_out"):
		case !p.optedOut[i] && res.Allowed && got == "":
		default:
			rd.wrong = append(rd.wrong, fmt.Sprintf("%s: allowed=%v %q", res.CustomerID, res.Allowed, got))
		}
	}
	return rd
}

// waitAnswered waits until a check of every probe at url answers right.
func (p probes) waitAnswered(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	var last round
	testenv.Eventually(t, timeout, "every probe answered", func() bool {
		last = p.check(url)
		return last.allAnswered() && len(last.wrong) == 0
	})
}

// checkLoop checks the probes again and again, at every url that urls
// returns, until stopped, and keeps every round.
type checkLoop struct {
	mu     sync.Mutex
	rounds []round
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (p probes) loop(urls func() []string, every time.Duration) *checkLoop {
	l := &checkLoop{stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			for _, u := range urls() {
				rd := p.check(u)
				l.mu.Lock()
				l.rounds = append(l.rounds, rd)
				l.mu.Unlock()
			}
			select {
			case <-l.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return l
}

// Stop ends the loop and returns its rounds.
func (l *checkLoop) Stop() []round {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	return l.Rounds()
}

// Rounds returns the rounds so far.
func (l *checkLoop) Rounds() []round {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.rounds)
}

// verdict tallies rounds: every answer must be right or unavailable, and
// no request may fail with a 5xx.
type verdict struct {
	rounds, checks, unavailable, failed int
	wrong                               []string
	statuses                            map[int]int
}

func tally(rounds []round) verdict {
	v := verdict{statuses: map[int]int{}}
	for _, rd := range rounds {
		v.rounds++
		v.statuses[rd.status]++
		if rd.err != nil || rd.status != 200 {
			v.failed++
			continue
		}
		v.checks += len(rd.unavailable)
		for _, u := range rd.unavailable {
			if u {
				v.unavailable++
			}
		}
		v.wrong = append(v.wrong, rd.wrong...)
	}
	return v
}

func (v verdict) String() string {
	return fmt.Sprintf("%d rounds, %d checks, %d unavailable, %d wrong, %d requests failed (statuses %v)",
		v.rounds, v.checks, v.unavailable, len(v.wrong), v.failed, v.statuses)
}

// mustBeSafe fails the test if any answer was wrong or any request got a
// 5xx (or, with noErrors, failed at all).
func (v verdict) mustBeSafe(t *testing.T, noErrors bool) {
	t.Helper()
	if len(v.wrong) > 0 {
		t.Errorf("%d wrong answers, such as %v", len(v.wrong), v.wrong[:min(5, len(v.wrong))])
	}
	for status, n := range v.statuses {
		if status >= 500 || (noErrors && status != 200) {
			t.Errorf("%d batch checks answered %d (0: no answer)", n, status)
		}
	}
}
