package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// The sizes: a run at other sizes says so in its notes.
const (
	goalCustomers = 100_000
	goalEvents    = 1_000_000
	goalScrubRows = 1_000_000
	goalRate      = 5000
)

func scaledNote(what string, got, goal int) []string {
	if got == goal {
		return nil
	}
	return []string{fmt.Sprintf("scaled: %s %d, the issue's size is %d", what, got, goal)}
}

// heldRate is the highest offered rate held with p99 under 5 ms; 0 if none.
func heldRate(fs []loadFigure) int {
	best := 0
	for _, f := range fs {
		if f.held(5) {
			best = max(best, f.Offered)
		}
	}
	return best
}

// atRate returns the figures at an offered rate.
func atRate(fs []loadFigure, rate int) loadFigure {
	for _, f := range fs {
		if f.Offered == rate {
			return f
		}
	}
	return loadFigure{}
}

func closestRate(rates []int) int {
	best := rates[0]
	for _, r := range rates {
		if abs(r-goalRate) < abs(best-goalRate) {
			best = r
		}
	}
	return best
}

func abs(n int) int { return max(n, -n) }

func (r *results) checkRow(cfg config) scenario {
	rate := closestRate(cfg.Rates)
	svc, fl := atRate(r.Check.Service, rate), atRate(r.Check.Floor, rate)
	s := scenario{Figure: fmt.Sprintf("outreachd p99 at %d/s", rate), Value: svc.P99Ms, Unit: "ms",
		Baseline: fmt.Sprintf("floor p99 at %d/s", rate), BaselineValue: fl.P99Ms, Target: "p99 ≤ 2 ms at 5k/s"}
	s.Summary = fmt.Sprintf("at %d/s: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %d errors (floor p50 %.2f, p99 %.2f, p99.9 %.2f ms); highest rate held with p99 < 5 ms: outreachd %d/s, floor %d/s",
		rate, svc.P50Ms, svc.P99Ms, svc.P999Ms, svc.Errors, fl.P50Ms, fl.P99Ms, fl.P999Ms, heldRate(r.Check.Service), heldRate(r.Check.Floor))
	if rate == goalRate {
		s.Met = met(svc.P99Ms <= 2 && svc.Errors == 0)
	} else {
		s.Notes = append(s.Notes, fmt.Sprintf("no run at 5,000/s; the figure is at %d/s", rate))
	}
	s.Notes = append(s.Notes, "a ratio of latencies: above 1 is slower than the floor")
	s.Notes = append(s.Notes, scaledNote("customers", cfg.Customers, goalCustomers)...)
	return s
}

func (r *results) saturationRow() scenario {
	sv, fl, co := r.Saturation.Service, r.Saturation.Floor, r.Saturation.Coalescing
	return scenario{Figure: "outreachd checks/s at saturation", Value: sv.Achieved, Unit: "checks/s",
		Baseline: "floor (echo + one GET) req/s", BaselineValue: fl.Achieved, Target: "≥ 1.0×",
		Met: met(ratio(sv.Achieved, fl.Achieved) >= 1.0),
		Summary: fmt.Sprintf("%d in flight: outreachd %.0f/s (p99 %.2f ms, %d errors), floor %.0f/s, coalescing floor %.0f/s (%.2f× the floor)",
			sv.Workers, sv.Achieved, sv.P99Ms, sv.Errors, fl.Achieved, co.Achieved, ratio(co.Achieved, fl.Achieved))}
}

func (r *results) historyRow(cfg config) scenario {
	ls := r.History.Lengths
	if len(ls) == 0 {
		return scenario{}
	}
	first, last := ls[0], ls[len(ls)-1]
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%d events: %.0f/s (p99 %.2f ms)", l.Events, l.Achieved, l.P99Ms))
	}
	s := scenario{Figure: fmt.Sprintf("checks/s at %d events", last.Events), Value: last.Achieved, Unit: "checks/s",
		Baseline: fmt.Sprintf("checks/s at %d events", first.Events), BaselineValue: first.Achieved, Target: "≥ 0.8×",
		Summary: strings.Join(parts, "; ")}
	if first.Events == 10 && last.Events == 10000 {
		s.Met = met(ratio(last.Achieved, first.Achieved) >= 0.8)
	} else {
		s.Notes = append(s.Notes, "scaled: the issue compares 10,000 events with 10")
	}
	return s
}

func (r *results) ingestRow(cfg config) scenario {
	in := r.Ingest
	s := scenario{Figure: "outreachd Kafka → Redis events/s", Value: in.Outreachd.EventsPerSec, Unit: "events/s",
		Baseline: "read-only consumer group events/s", BaselineValue: in.ReadOnly.EventsPerSec, Target: "≥ 0.5×",
		Met: met(ratio(in.Outreachd.EventsPerSec, in.ReadOnly.EventsPerSec) >= 0.5),
		Summary: fmt.Sprintf("%d events of %d customers, %d partitions: outreachd %.1f s, read-only %.1f s (first event after %.0f ms and %.0f ms)",
			in.Events, cfg.Customers, partitions, in.Outreachd.Seconds, in.ReadOnly.Seconds, in.Outreachd.FirstEventMs, in.ReadOnly.FirstEventMs)}
	s.Notes = scaledNote("events", cfg.Events, goalEvents)
	return s
}

func (r *results) freshnessRow(cfg config) scenario {
	f := r.Freshness
	s := scenario{Figure: "produce → visible in /v1/check, p99", Value: f.Service.P99Ms, Unit: "ms",
		Baseline: "produce → FetchMessage, p99", BaselineValue: f.Kafka.P99Ms, Target: "p99 ≤ 50 ms",
		Met: met(f.Service.P99Ms <= 50 && f.Service.Missed == 0),
		Summary: fmt.Sprintf("%d events/s, %d probes: p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d missed (Kafka alone p50 %.1f ms, p99 %.1f ms)",
			f.Rate, f.Service.Samples, f.Service.P50Ms, f.Service.P99Ms, f.Service.MaxMs, f.Service.Missed, f.Kafka.P50Ms, f.Kafka.P99Ms)}
	s.Notes = append(s.Notes, "a ratio of latencies: above 1 is slower than Kafka alone")
	if cfg.FreshRate != 1000 {
		s.Notes = append(s.Notes, fmt.Sprintf("scaled: %d events/s, the issue's rate is 1,000", cfg.FreshRate))
	}
	return s
}

func (r *results) scrubRow(cfg config) scenario {
	sc := r.Scrub
	s := scenario{Figure: "scrub rows/s", Value: sc.Service.RowsPerSec, Unit: "rows/s",
		Baseline: "ceiling: one pipelined GET of 200 bytes per row", BaselineValue: sc.Ceiling.RowsPerSec,
		Target: "≥ 0.5×, peak RSS < 100 MB",
		Met:    met(ratio(sc.Service.RowsPerSec, sc.Ceiling.RowsPerSec) >= 0.5 && sc.PeakRSSMB < 100),
		Summary: fmt.Sprintf("%d rows over %d customers, %d suppression entries: %.1f s, %.1f%% allowed; outreachd peak RSS %.0f MB (%.0f MB before)",
			sc.Service.Rows, cfg.Customers, cfg.Suppressed, sc.Service.Seconds, 100*float64(sc.Service.Allowed)/float64(max(1, sc.Service.Rows)), sc.PeakRSSMB, sc.RSSBeforeMB)}
	if !sc.PeakIsScrubs {
		s.Notes = append(s.Notes, "the peak RSS is over outreachd's whole life: /proc/PID/clear_refs could not reset it")
	}
	s.Notes = append(s.Notes, scaledNote("rows", cfg.ScrubRows, goalScrubRows)...)
	return s
}

func (r *results) memoryRow(cfg config) scenario {
	m := r.Memory
	s := scenario{Figure: "Redis bytes per event (MEMORY USAGE)", Value: m.UsageBytesPerEvent, Unit: "B/event",
		Baseline: "the event's JSON", BaselineValue: m.JSONBytesPerEvent, Target: "≤ 150 B per event",
		Met: met(m.UsageBytesPerEvent <= 150),
		Summary: fmt.Sprintf("%.0f B/event and %.0f B/customer by MEMORY USAGE (%d customers, %d events); %.0f B/event and %.0f B/customer by used_memory; history %s, state %s",
			m.UsageBytesPerEvent, m.UsageBytesPerCustomer, m.SampledCustomers, m.SampledEvents, m.UsedMemoryBytesPerEvent, m.UsedMemoryBytesPerCustomer, m.HistoryEncoding, m.StateEncoding)}
	s.Notes = append(s.Notes, "used_memory covers the whole server: other clients add noise")
	s.Notes = append(s.Notes, scaledNote("events", cfg.Events, goalEvents)...)
	return s
}

func (r *results) timelineRow() scenario {
	t := r.Timeline
	return scenario{Figure: fmt.Sprintf("first page of 50 of %d events, reads/s", t.Events), Value: t.Service.Achieved, Unit: "reads/s",
		Baseline: "floor: the same Redis reads, raw", BaselineValue: t.Raw.Achieved, Target: "≥ 0.5×",
		Met: met(ratio(t.Service.Achieved, t.Raw.Achieved) >= 0.5),
		Summary: fmt.Sprintf("outreachd %.0f/s (p99 %.2f ms, %d B a page), raw %.0f/s (p99 %.2f ms, %d B)",
			t.Service.Achieved, t.Service.P99Ms, t.ServiceBytes, t.Raw.Achieved, t.Raw.P99Ms, t.RawBytes)}
}

// markdown writes the table of the run.
func (r *results) markdown(w io.Writer, cfg config) {
	title := "Performance harness: latest full run"
	if cfg.Smoke {
		title = "Performance harness: smoke run (small sizes; not figures to quote)"
	}
	fmt.Fprintf(w, "# %s\n\n", title)
	fmt.Fprintf(w, "%s, %.0f s, commit %s, %d CPUs, %s, Redis %s, load average %s at the start and %s at the end.\n\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Seconds, r.Commit, r.Machine.CPUs, r.Machine.Go, r.Machine.Redis, r.Machine.LoadAvgStart, r.Machine.LoadAvgEnd)
	fmt.Fprintln(w, "| # | scenario | figure | baseline, same run | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, s := range r.Scenarios {
		fmt.Fprintf(w, "| %d | %s | %s: **%s** %s | %s: %s %s | **%.2f×** | %s | %s |\n", s.N, s.Name, s.Figure, num(s.Value), s.Unit,
			s.Baseline, num(s.BaselineValue), s.Unit, s.Ratio, s.Target, yesNo(s.Met))
	}
	fmt.Fprintln(w)
	for _, s := range r.Scenarios {
		fmt.Fprintf(w, "- **%d %s**: %s.", s.N, s.Name, s.Summary)
		for _, n := range s.Notes {
			fmt.Fprintf(w, " _%s._", n)
		}
		fmt.Fprintln(w)
	}
	if len(r.Check.Service) > 0 {
		fmt.Fprintln(w, "\nCheck latency against offered rate (scenario 1), open loop:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| offered/s | server | answered/s | p50 ms | p99 ms | p99.9 ms | errors |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, f := range slices.Concat(r.Check.Service, r.Check.Floor) {
			fmt.Fprintf(w, "| %d | %s | %.0f | %.2f | %.2f | %.2f | %d of %d%s |\n", f.Offered, f.Server, f.Achieved, f.P50Ms, f.P99Ms, f.P999Ms, f.Errors, f.Requests, kinds(f.ErrorKinds))
		}
	}
}

func num(v float64) string {
	switch {
	case v >= 100:
		return commas(int64(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func yesNo(m *bool) string {
	switch {
	case m == nil:
		return "n/a"
	case *m:
		return "yes"
	}
	return "**no**"
}

func kinds(k map[string]int) string {
	if len(k) == 0 {
		return ""
	}
	var parts []string
	for kind, n := range k {
		parts = append(parts, fmt.Sprintf("%s: %d", kind, n))
	}
	slices.Sort(parts)
	return " (" + strings.Join(parts, ", ") + ")"
}
