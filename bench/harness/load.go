package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadFigure is what one vegeta attack measured.
type loadFigure struct {
	Server     string         `json:"server"`
	Offered    int            `json:"offered_per_s"` // 0: closed loop at saturation
	Workers    int            `json:"workers,omitempty"`
	Seconds    float64        `json:"seconds"`
	Requests   int            `json:"requests"`
	Achieved   float64        `json:"achieved_per_s"` // successful answers per second
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	P50Ms      float64        `json:"p50_ms"`
	P99Ms      float64        `json:"p99_ms"`
	P999Ms     float64        `json:"p999_ms"`
	MaxMs      float64        `json:"max_ms"`
}

// held says whether an open-loop attack kept up with its rate with p99
// under limit: at least 95% of the offered rate answered, and fewer than
// 0.1% errors.
func (f loadFigure) held(limitMs float64) bool {
	return f.Offered > 0 && f.P99Ms < limitMs && f.Achieved >= 0.95*float64(f.Offered) && f.Errors*1000 < f.Requests
}

const (
	requestTimeout = 2 * time.Second
	maxOpenWorkers = 2000 // in flight at most in an open-loop attack
)

// attack runs one vegeta attack: open loop at rate per second, or, with
// rate 0, closed loop with workers requests in flight. bad returns why a
// result is an error, "" if it is not.
func attack(ctx context.Context, server string, tr vegeta.Targeter, rate, workers int, d time.Duration, bad func(*vegeta.Result) string) loadFigure {
	opts := []func(*vegeta.Attacker){vegeta.Timeout(requestTimeout), vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow)}
	pacer := vegeta.Rate{Freq: rate, Per: time.Second}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)))
	} else {
		opts = append(opts, vegeta.Workers(uint64(min(64, rate/100+1))), vegeta.MaxWorkers(maxOpenWorkers))
	}
	a := vegeta.NewAttacker(opts...)
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()
	f := loadFigure{Server: server, Offered: rate, ErrorKinds: map[string]int{}}
	if rate == 0 {
		f.Workers = workers
	}
	lat := make([]time.Duration, 0, max(rate, 1000)*int(d/time.Second+1))
	ok := 0
	start := time.Now()
	for r := range a.Attack(tr, pacer, d, server) {
		lat = append(lat, r.Latency)
		if why := bad(r); why != "" {
			f.Errors++
			f.ErrorKinds[why]++
		} else {
			ok++
		}
	}
	f.Seconds = time.Since(start).Seconds()
	f.Requests = len(lat)
	f.Achieved = float64(ok) / f.Seconds
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))])
	}
	f.P50Ms, f.P99Ms, f.P999Ms, f.MaxMs = q(0.50), q(0.99), q(0.999), q(1)
	return f
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (f loadFigure) String() string {
	rate := "saturation (" + strconv.Itoa(f.Workers) + " in flight)"
	if f.Offered > 0 {
		rate = strconv.Itoa(f.Offered) + "/s"
	}
	return fmt.Sprintf("%s at %s: %.0f/s answered, p50 %.2fms p99 %.2fms p99.9 %.2fms, %d errors of %d %v",
		f.Server, rate, f.Achieved, f.P50Ms, f.P99Ms, f.P999Ms, f.Errors, f.Requests, f.ErrorKinds)
}

// httpError is the error of a result that is not a 200: its status, or
// the kind of transport error.
func httpError(r *vegeta.Result) string {
	switch {
	case r.Error != "" && r.Code == 0:
		switch {
		case strings.Contains(r.Error, "Timeout") || strings.Contains(r.Error, "deadline"):
			return "timeout"
		case strings.Contains(r.Error, "refused") || strings.Contains(r.Error, "reset"):
			return "connection"
		}
		return "transport"
	case r.Code != http.StatusOK:
		return strconv.Itoa(int(r.Code))
	}
	return ""
}

var unavailable = []byte(`"code":"unavailable"`)

// checkError is the error of a check result: not a 200, or an answer of
// unavailable (the check could not read its facts in time).
func checkError(r *vegeta.Result) string {
	if why := httpError(r); why != "" {
		return why
	}
	if bytes.Contains(r.Body, unavailable) {
		return "unavailable"
	}
	return ""
}

// mix is splitmix64: the n-th request's random choices, without a shared
// generator between vegeta's workers.
func mix(n uint64) uint64 {
	n += 0x9e3779b97f4a7c15
	n = (n ^ n>>30) * 0xbf58476d1ce4e5b9
	n = (n ^ n>>27) * 0x94d049bb133111eb
	return n ^ n>>31
}

var (
	checkProducts = []string{"fiber-100", "fiber-500", "fiber-1000", "mobile-s", "mobile-m", "tv-basic"}
	jsonHeader    = http.Header{"Content-Type": {"application/json"}}
)

// checkTargeter makes POST path checks of random customers named by
// customer(i) for i < n: mostly calls, some SMS, sales of a product with an
// offer price, by one of 300 agents, and a claim on claimShare of them.
func checkTargeter(base string, n int, customer func(int) string, claimShare float64) vegeta.Targeter {
	var seq atomic.Uint64
	return func(t *vegeta.Target) error {
		h := mix(seq.Add(1))
		channel := "call"
		if h>>40%5 == 0 {
			channel = "sms"
		}
		b := make([]byte, 0, 256)
		b = append(b, `{"customer_id":"`...)
		b = append(b, customer(int(h%uint64(n)))...)
		b = append(b, `","channel":"`...)
		b = append(b, channel...)
		b = append(b, `","purpose":"sales","agent":"agent-`...)
		b = strconv.AppendUint(b, h>>20%300, 10)
		b = append(b, `","campaign":"campaign-2026-07","product":"`...)
		b = append(b, checkProducts[h>>32%uint64(len(checkProducts))]...)
		b = append(b, `","offer":{"price":`...)
		b = strconv.AppendUint(b, 20+h>>48%40, 10)
		b = append(b, `,"currency":"EUR"}`...)
		if float64(h>>8%1000) < claimShare*1000 {
			b = append(b, `,"claim":true`...)
		}
		b = append(b, '}')
		t.Method, t.URL, t.Header, t.Body = "POST", base, jsonHeader, b
		return nil
	}
}
