package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/contact"
)

// pause waits between two attacks, so that one's tail does not slow the
// next.
func (e *env) pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(e.cfg.Settle):
	}
}

// startFloor starts the floor server once, with a 200-byte value for every
// seed customer (its GET, and the scrub's ceiling).
func (e *env) startFloor(ctx context.Context) error {
	if e.floor != nil {
		return nil
	}
	value := make([]byte, 200)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	pipe := e.rdb.Pipeline()
	for i := range e.cfg.Customers {
		pipe.Set(ctx, e.valueKey(eventgen.CustomerID(i)), value, 0)
		if pipe.Len() >= 5000 {
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	bin, err := e.binary("floor")
	if err != nil {
		return err
	}
	e.floor, err = startFloor(ctx, bin, e.srv, e.names, e.pr)
	return err
}

// valueKey is the floor's key of a customer: PREFIX{c:ID}:v, 200 bytes.
func (e *env) valueKey(id string) string { return e.names.prefix + "{c:" + id + "}:v" }

// checkRates is scenario 1: checks of the seed's customers, open loop at
// each rate, against outreachd and the floor, one after the other at each
// rate.
func (e *env) checkRates(ctx context.Context) error {
	if err := e.startFloor(ctx); err != nil {
		return err
	}
	n := e.cfg.Customers
	// Warm up both servers' connection pools at the lowest rate, unmeasured.
	for _, url := range []string{e.daemon.url, e.floor.url} {
		attack(ctx, "warm-up", checkTargeter(url+"/v1/check", n, eventgen.CustomerID, e.cfg.ClaimShare), e.cfg.Rates[0], 0,
			min(time.Second, e.cfg.RateDuration/2), checkError)
	}
	for _, rate := range e.cfg.Rates {
		for _, s := range []struct {
			name string
			url  string
			res  *[]loadFigure
		}{
			{"outreachd", e.daemon.url + "/v1/check", &e.res.Check.Service},
			{"floor", e.floor.url + "/v1/check", &e.res.Check.Floor},
		} {
			f := attack(ctx, s.name, checkTargeter(s.url, n, eventgen.CustomerID, e.cfg.ClaimShare), rate, 0, e.cfg.RateDuration, checkError)
			e.pr.Printf("check: %s", f)
			*s.res = append(*s.res, f)
			e.pause(ctx)
		}
	}
	return ctx.Err()
}

// saturation is scenario 2: checks closed loop with cfg.Workers in flight,
// against outreachd, the floor and the coalescing floor, in two rounds so
// that drift in the machine's load hits every server alike.
func (e *env) saturation(ctx context.Context) error {
	if err := e.startFloor(ctx); err != nil {
		return err
	}
	n := e.cfg.Customers
	arms := []struct {
		name, url string
		bad       func(*vegeta.Result) string
		res       *loadFigure
	}{
		{"outreachd", e.daemon.url + "/v1/check", checkError, &e.res.Saturation.Service},
		{"floor", e.floor.url + "/v1/check", httpError, &e.res.Saturation.Floor},
		{"floor-coalescing", e.floor.url + "/coalesce/v1/check", httpError, &e.res.Saturation.Coalescing},
	}
	for round := range 2 {
		for _, a := range arms {
			f := attack(ctx, a.name, checkTargeter(a.url, n, eventgen.CustomerID, e.cfg.ClaimShare), 0, e.cfg.Workers, e.cfg.SatDuration/2, a.bad)
			e.pr.Printf("saturation, round %d: %s", round+1, f)
			*a.res = merge(*a.res, f)
			e.pause(ctx)
		}
	}
	return ctx.Err()
}

// merge adds the rounds of one arm: throughput over their time together,
// and the worse of their latencies.
func merge(a, b loadFigure) loadFigure {
	if a.Requests == 0 {
		return b
	}
	ok := a.Achieved*a.Seconds + b.Achieved*b.Seconds
	a.Seconds += b.Seconds
	a.Requests += b.Requests
	a.Achieved = ok / a.Seconds
	a.Errors += b.Errors
	for k, v := range b.ErrorKinds {
		a.ErrorKinds[k] += v
	}
	a.P50Ms, a.P99Ms, a.P999Ms, a.MaxMs = max(a.P50Ms, b.P50Ms), max(a.P99Ms, b.P99Ms), max(a.P999Ms, b.P999Ms), max(a.MaxMs, b.MaxMs)
	return a
}

// seedLong stores, for each of ids, n events of eventgen, through the
// store outreachd uses, in parallel batches.
func (e *env) seedLong(ctx context.Context, what string, ids []string, n int) error {
	var done atomic.Int64
	total := len(ids) * n
	stop := every(5*time.Second, func() { e.pr.Printf("%s: %d of %d events applied", what, done.Load(), total) })
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	sem := make(chan struct{}, 4)
	for k, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			gen := eventgen.New(uint64(1000+k), 1, what+"-"+e.names.id+"-"+strconv.Itoa(k)+"-", time.Now(), span)
			for left := n; left > 0; {
				batch := make([]contact.Event, min(500, left))
				for i := range batch {
					batch[i] = gen.For(id)
				}
				if _, err := e.store.Apply(ctx, batch); err != nil {
					errs <- err
					return
				}
				left -= len(batch)
				done.Add(int64(len(batch)))
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// history is scenario 3: checks at saturation of customers with each
// history length, whose ratio of the longest against the shortest says
// whether a check's cost depends on the history.
func (e *env) history(ctx context.Context) error {
	for _, n := range e.cfg.HistoryLens {
		ids := make([]string, e.cfg.HistoryCusts)
		for k := range ids {
			ids[k] = fmt.Sprintf("hist-%d-%d", n, k)
		}
		if err := e.seedLong(ctx, "history", ids, n); err != nil {
			return err
		}
	}
	e.pr.Printf("history: seeded %d customers for each of %v events", e.cfg.HistoryCusts, e.cfg.HistoryLens)
	// Rounds of short attacks, each length in turn, so that the machine's
	// drift in load hits every length alike.
	const rounds = 3
	figs := make([]loadFigure, len(e.cfg.HistoryLens))
	for round := range rounds {
		for i, n := range e.cfg.HistoryLens {
			name := func(k int) string { return fmt.Sprintf("hist-%d-%d", n, k) }
			tr := checkTargeter(e.daemon.url+"/v1/check", e.cfg.HistoryCusts, name, 0)
			f := attack(ctx, "outreachd", tr, 0, e.cfg.Workers, e.cfg.HistoryDur/rounds, checkError)
			e.pr.Printf("history, round %d, %d events: %s", round+1, n, f)
			figs[i] = merge(figs[i], f)
			e.pause(ctx)
		}
	}
	for i, n := range e.cfg.HistoryLens {
		e.res.History.Lengths = append(e.res.History.Lengths, historyFigure{Events: n, loadFigure: figs[i]})
	}
	return ctx.Err()
}

// timeline is scenario 8: the first page of 50 of customers with
// cfg.TimelineLen events, from outreachd and, raw, from the floor, at
// saturation, in two rounds.
func (e *env) timeline(ctx context.Context) error {
	if err := e.startFloor(ctx); err != nil {
		return err
	}
	const custs = 4
	ids := make([]string, custs)
	for k := range ids {
		ids[k] = fmt.Sprintf("tl-%d", k)
	}
	if err := e.seedLong(ctx, "timeline", ids, e.cfg.TimelineLen); err != nil {
		return err
	}
	if err := e.checkPages(ctx, ids[0]); err != nil {
		return err
	}
	arms := []struct {
		name, base string
		res        *loadFigure
	}{
		{"outreachd", e.daemon.url, &e.res.Timeline.Service},
		{"floor-raw", e.floor.url, &e.res.Timeline.Raw},
	}
	for round := range 2 {
		for _, a := range arms {
			var seq atomic.Uint64
			tr := func(t *vegeta.Target) error {
				t.Method, t.URL = "GET", a.base+"/v1/customers/"+ids[seq.Add(1)%custs]+"/contacts?limit=50"
				return nil
			}
			f := attack(ctx, a.name, tr, 0, e.cfg.Workers, e.cfg.TimelineDur/2, httpError)
			e.pr.Printf("timeline, round %d: %s", round+1, f)
			*a.res = merge(*a.res, f)
			e.pause(ctx)
		}
	}
	e.res.Timeline.Events = e.cfg.TimelineLen
	return ctx.Err()
}

// checkPages makes sure that both servers answer a full page of 50, so
// that the ratio compares the same work.
func (e *env) checkPages(ctx context.Context, id string) error {
	get := func(url string) (*http.Response, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/customers/"+id+"/contacts?limit=50", nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		buf, err := io.ReadAll(resp.Body)
		return resp, buf, err
	}
	resp, body, err := get(e.daemon.url)
	if err != nil {
		return err
	}
	var page struct{ Events []json.RawMessage }
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 || len(page.Events) != 50 {
		return fmt.Errorf("outreachd's timeline of %s: %d, %d events, %v", id, resp.StatusCode, len(page.Events), err)
	}
	e.res.Timeline.ServiceBytes = len(body)
	resp, body, err = get(e.floor.url)
	if err != nil {
		return err
	}
	if resp.Header.Get("X-Members") != "50" {
		return fmt.Errorf("the floor's timeline of %s: %d, %s members", id, resp.StatusCode, resp.Header.Get("X-Members"))
	}
	e.res.Timeline.RawBytes = len(body)
	return nil
}
