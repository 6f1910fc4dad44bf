package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// scrubSummary counts a scrubbed list by result and by reason.
type scrubSummary struct {
	rows, allowed, invalid int64
	blocked                map[string]int64 // code → rows not allowed that give it
	warned                 map[string]int64 // code → allowed rows that give it (warnings)
	onlyAllowed            bool             // the blocked rows were left out
	policy                 string           // of the JSON summary: live, a preset's name, or inline
}

func newScrubSummary() *scrubSummary {
	return &scrubSummary{blocked: map[string]int64{}, warned: map[string]int64{}}
}

func (s *scrubSummary) add(allowed bool, reasons string) {
	s.rows++
	m := s.blocked
	if allowed {
		s.allowed++
		m = s.warned
	}
	for code := range strings.SplitSeq(reasons, "|") {
		if code == "" {
			continue
		}
		if code == "invalid" {
			s.invalid++
		}
		if _, ok := m[code]; !ok {
			code = strings.Clone(code) // not to keep the record's memory
		}
		m[code]++
	}
}

// write prints the summary tables:
//
//	RESULT        ROWS   SHARE
//	allowed          2   40.0%
//	not allowed      3   60.0%
//	total            5  100.0%
//
//	REASON            ROWS   SHARE
//	recent_contact       1   20.0%
func (s *scrubSummary) write(w io.Writer) {
	fmt.Fprintln(w)
	if s.policy != "" && s.policy != "live" {
		fmt.Fprintf(w, "What if, under the policy %s (the policy in force is unchanged):\n\n", cell(s.policy))
	}
	if s.onlyAllowed {
		fmt.Fprintf(w, "%s rows to call; --only-allowed left the others out (scrub without it to see them by reason)\n", commas(s.allowed))
		if len(s.warned) > 0 {
			fmt.Fprintln(w)
			writeTable(w, "WARNING", s.warned, s.rows)
		}
		return
	}
	writeTable(w, "RESULT", nil, s.rows,
		row{"allowed", s.allowed}, row{"not allowed", s.rows - s.allowed}, row{"total", s.rows})
	if len(s.blocked) > 0 {
		fmt.Fprintln(w)
		writeTable(w, "REASON", s.blocked, s.rows)
	}
	if len(s.warned) > 0 {
		fmt.Fprintln(w)
		writeTable(w, "WARNING", s.warned, s.rows)
	}
	if s.severalReasons() {
		fmt.Fprintln(w, "A row can have several reasons; it counts under each.")
	}
}

func (s *scrubSummary) severalReasons() bool {
	var n int64
	for _, c := range s.blocked {
		n += c
	}
	return n > s.rows-s.allowed
}

type row struct {
	name  string
	count int64
}

// writeTable writes rows, then counts sorted by count (largest first), as
// a table with each count's share of total.
func writeTable(w io.Writer, title string, counts map[string]int64, total int64, rows ...row) {
	for name, n := range counts {
		rows = append(rows, row{name, n})
	}
	if counts != nil {
		slices.SortFunc(rows, func(a, b row) int {
			if a.count != b.count {
				return int(b.count - a.count)
			}
			return strings.Compare(a.name, b.name)
		})
	}
	nameW, countW := len(title), len("ROWS")
	for _, r := range rows {
		nameW = max(nameW, len(r.name))
		countW = max(countW, len(commas(r.count)))
	}
	fmt.Fprintf(w, "%-*s  %*s  %6s\n", nameW, title, countW, "ROWS", "SHARE")
	for _, r := range rows {
		share := "-"
		switch pct := float64(r.count) * 100 / float64(total); {
		case total <= 0:
		case r.count > 0 && pct < 0.05:
			share = "<0.1%"
		default:
			share = strconv.FormatFloat(pct, 'f', 1, 64) + "%"
		}
		fmt.Fprintf(w, "%-*s  %*s  %6s\n", nameW, r.name, countW, commas(r.count), share)
	}
}
