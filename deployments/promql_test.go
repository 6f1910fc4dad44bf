package deployments_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// selector is a metric named in a PromQL expression, with the label names
// that its matchers use.
type selector struct {
	metric string
	labels []string
}

// PromQL words that are not metric names where they stand alone.
var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// Words followed by a parenthesised list of label names, not expressions.
var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// selectors returns the metric selectors of a PromQL expression, or of a
// Grafana label_values(METRIC, LABEL) query. It reads just enough PromQL
// for that: strings, ranges and label lists are skipped, and a word that is
// followed by "(" is a function.
func selectors(expr string) ([]selector, error) {
	var out []selector
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ in %q", expr)
			}
			i += end + 1
		case c == '$': // a Grafana variable
			i++
			for i < len(expr) && isWordChar(expr[i]) {
				i++
			}
		case c == '{':
			labels, end, err := matchers(expr, i)
			if err != nil {
				return nil, err
			}
			out = append(out, selector{labels: labels})
			i = end
		case isWordStart(c):
			j := i
			for j < len(expr) && isWordChar(expr[j]) {
				j++
			}
			word, k := expr[i:j], skipSpace(expr, j)
			paren := k < len(expr) && expr[k] == '('
			switch {
			case paren && labelLists[word]:
				end := strings.IndexByte(expr[k:], ')')
				if end < 0 {
					return nil, fmt.Errorf("unclosed ( in %q", expr)
				}
				i = k + end + 1
			case paren && word == "label_values":
				// label_values(METRIC{...}, LABEL): only the first argument is PromQL.
				arg := expr[k+1:]
				if comma := strings.LastIndexByte(arg, ','); comma >= 0 {
					arg = arg[:comma]
				}
				return selectors(arg)
			case paren || promqlWords[word]:
				i = j
			default:
				sel := selector{metric: word}
				i = j
				if k < len(expr) && expr[k] == '{' {
					var err error
					if sel.labels, i, err = matchers(expr, k); err != nil {
						return nil, err
					}
				}
				out = append(out, sel)
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isWordChar(expr[i]) || expr[i] == '.') {
				i++ // a number or a duration
			}
		default:
			i++
		}
	}
	return out, nil
}

// matchers reads the label matchers from the "{" at i and returns their
// label names and the index after the closing "}".
func matchers(expr string, i int) ([]string, int, error) {
	var labels []string
	i++
	for {
		i = skipSpace(expr, i)
		if i < len(expr) && expr[i] == '}' {
			return labels, i + 1, nil
		}
		j := i
		for j < len(expr) && isWordChar(expr[j]) {
			j++
		}
		if j == i {
			return nil, 0, fmt.Errorf("want a label name at %d of %q", i, expr)
		}
		labels = append(labels, expr[i:j])
		i = skipSpace(expr, j)
		for i < len(expr) && strings.IndexByte("=!~", expr[i]) >= 0 {
			i++
		}
		end, err := skipString(expr, skipSpace(expr, i))
		if err != nil {
			return nil, 0, err
		}
		i = skipSpace(expr, end)
		if i < len(expr) && expr[i] == ',' {
			i++
		}
	}
}

// skipString returns the index after the string literal at i.
func skipString(expr string, i int) (int, error) {
	if i >= len(expr) || strings.IndexByte("\"'`", expr[i]) < 0 {
		return 0, fmt.Errorf("want a string at %d of %q", i, expr)
	}
	q := expr[i]
	for j := i + 1; j < len(expr); j++ {
		switch expr[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string in %q", expr)
}

func skipSpace(s string, i int) int {
	for i < len(s) && strings.IndexByte(" \t\n\r", s[i]) >= 0 {
		i++
	}
	return i
}

func isWordStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isWordChar(c byte) bool { return isWordStart(c) || c >= '0' && c <= '9' }

// TestSelectors keeps the reader of PromQL honest.
func TestSelectors(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="outreach"} == 0`: {`up job`},
		`sum by (job, route) (rate(outreach_http_requests_total{route!="/readyz",status=~"5.."}[5m])) / ignoring(x) sum(rate(b[$__rate_interval])) > 0.05`: {
			`outreach_http_requests_total route status`, `b`},
		`histogram_quantile(0.99, sum by (le) (rate(outreach_check_seconds_bucket{job=~"$job",instance=~"$instance"}[5m]))) > 250e-3`: {
			`outreach_check_seconds_bucket job instance`},
		`max by (topic, partition) (outreach_consumer_lag) offset 5m and on(instance) group_left(pod) x{a="}",b='{'}`: {
			`outreach_consumer_lag`, `x a b`},
		`label_values(outreach_http_requests_total{job=~"$job"}, instance)`: {`outreach_http_requests_total job`},
		`absent(up{job="outreach"})`:                                        {`up job`},
		`outreach_consumer_lag{job="outreach",instance="b:8080",topic="outreach.events",partition="0"}`: {
			`outreach_consumer_lag job instance topic partition`},
	} {
		sels, err := selectors(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		var got []string
		for _, s := range sels {
			got = append(got, strings.Join(append([]string{s.metric}, s.labels...), " "))
		}
		if !slices.Equal(got, want) {
			t.Errorf("selectors(%s)\n got %q\nwant %q", expr, got, want)
		}
	}
}
