package deployments_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/outreach/outreach/internal/testenv"
)

// Labels that Prometheus adds to every series of a target, and series that
// it makes itself for each target.
var (
	targetLabels = []string{"job", "instance", "namespace", "pod", "__name__"}
	scrapeSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
)

// TestMonitoringUsesRealMetrics checks that every metric, and every label
// matched, in the alert rules, their tests and the Grafana dashboard is one
// that a running outreachd exposes on /metrics.
func TestMonitoringUsesRealMetrics(t *testing.T) {
	families := scrapeOutreachd(t)
	exposed := exposedSeries(t, families)
	t.Run("documented", func(t *testing.T) { checkDocumented(t, families) })
	for name := range pendingMetrics {
		if _, ok := exposed[name]; ok {
			t.Errorf("outreachd exposes %s now: delete it from pendingMetrics in helpers_test.go", name)
		}
	}
	var problems []string
	for where, exprs := range monitoringExprs(t) {
		for _, expr := range exprs {
			sels, err := selectors(expr)
			if err != nil {
				t.Errorf("%s: %v", where, err)
			}
			for _, sel := range sels {
				if p := checkSelector(exposed, sel); p != "" {
					problems = append(problems, where+": "+p)
				}
			}
		}
	}
	slices.Sort(problems)
	if problems = slices.Compact(problems); len(problems) > 0 {
		t.Errorf("metrics or labels that outreachd does not expose:\n%s", strings.Join(problems, "\n"))
	}
}

// checkDocumented checks that docs/OPERATIONS.md explains every outreach_*
// metric and every alert, and has the section each alert's runbook_url
// points to.
func checkDocumented(t *testing.T, families map[string]*dto.MetricFamily) {
	doc := string(readFile(t, filepath.Join(root, "docs", "OPERATIONS.md")))
	names := mapKeys(families)
	for name := range pendingMetrics {
		names = append(names, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count"))
	}
	for _, name := range names {
		if strings.HasPrefix(name, "outreach_") && !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/OPERATIONS.md does not explain the metric %s", name)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Annotations map[string]string
			}
		}
	}
	unmarshalYAML(t, filepath.Join("prometheus", "alerts.yaml"), &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], "docs/OPERATIONS.md#")
			if !ok || !regexp.MustCompile(`(?mi)^#+ `+regexp.QuoteMeta(anchor)+`$`).MatchString(doc) {
				t.Errorf("alert %s: runbook_url %q names no section of docs/OPERATIONS.md", r.Alert, r.Annotations["runbook_url"])
			}
			if !strings.Contains(doc, r.Alert) {
				t.Errorf("docs/OPERATIONS.md does not mention the alert %s", r.Alert)
			}
		}
	}
}

// checkSelector returns what is wrong with a selector, or "".
func checkSelector(exposed map[string][]string, sel selector) string {
	if sel.metric == "" {
		return fmt.Sprintf("a selector without a metric name, matching %v", sel.labels)
	}
	labels, ok := exposed[sel.metric]
	if !ok {
		labels, ok = pendingMetrics[sel.metric]
	}
	if !ok && !slices.Contains(scrapeSeries, sel.metric) {
		return "no metric " + sel.metric
	}
	for _, l := range sel.labels {
		if !slices.Contains(labels, l) && !slices.Contains(targetLabels, l) {
			return fmt.Sprintf("%s has no label %s (it has %v)", sel.metric, l, labels)
		}
	}
	return ""
}

// scrapeOutreachd runs the real outreachd on an embedded Kafka broker and a
// miniredis of the test's own, makes it apply events, answer checks,
// answer /readyz and retry a failed Redis write, so that every metric has a
// series, and returns what /metrics then says.
func scrapeOutreachd(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	mini := miniredis.RunT(t)
	d := testenv.StartDaemon(t, testenv.Build(t, filepath.Join(root, "cmd", "outreachd")),
		"OUTREACH_REDIS_ADDR="+mini.Addr(), "OUTREACH_AUTH=off")
	applied := func(n float64) func() bool {
		return func() bool { return counter(scrape(t, d.URL), "outreach_events_applied_total") >= n }
	}
	post(t, d.URL+"/v1/events", http.StatusAccepted, event("deploy-1"))
	testenv.Eventually(t, 30*time.Second, "the first event is applied", applied(1))
	post(t, d.URL+"/v1/check", http.StatusOK, `{"customer_id":"c-deploy","channel":"call"}`)
	get(t, d.URL+"/readyz")

	// A failing Redis: checks answer unavailable and the consumer retries.
	mini.SetError("ERR deployments_test: Redis fails")
	post(t, d.URL+"/v1/check", http.StatusOK, `{"customer_id":"c-deploy","channel":"call"}`)
	post(t, d.URL+"/v1/events", http.StatusAccepted, event("deploy-2"))
	testenv.Eventually(t, 30*time.Second, "the consumer retries", func() bool {
		_, ok := scrape(t, d.URL)["outreach_consumer_retries_total"]
		return ok
	})
	get(t, d.URL+"/readyz")
	mini.SetError("")
	testenv.Eventually(t, 30*time.Second, "the second event is applied", applied(2))
	return scrape(t, d.URL)
}

func event(id string) string {
	return `{"id":"` + id + `","type":"contact","customer_id":"c-deploy","at":"` + time.Now().UTC().Format(time.RFC3339) +
		`","channel":"call","agent":"a.jones","outcome":"voicemail"}`
}

func post(t *testing.T, url string, want int, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %s, want %d", url, resp.Status, want)
	}
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp
}

// scrape reads /metrics.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return families
}

func counter(families map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	if f, ok := families[name]; ok {
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// exposedSeries returns the names of the series that families make (a
// histogram's NAME_bucket, NAME_sum and NAME_count) with their label names.
func exposedSeries(t *testing.T, families map[string]*dto.MetricFamily) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(name string, labels []string) {
		for _, l := range labels {
			if !slices.Contains(out[name], l) {
				out[name] = append(out[name], l)
			}
		}
		if out[name] == nil {
			out[name] = []string{}
		}
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				add(name+"_bucket", append(slices.Clone(labels), "le"))
				add(name+"_sum", labels)
				add(name+"_count", labels)
			case dto.MetricType_SUMMARY:
				add(name, append(slices.Clone(labels), "quantile"))
				add(name+"_sum", labels)
				add(name+"_count", labels)
			default:
				add(name, labels)
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("/metrics has only %d series names: %v", len(out), mapKeys(out))
	}
	return out
}

// monitoringExprs returns the PromQL of the alert rules, the series of their
// promtool tests and the queries of the Grafana dashboard, by file.
func monitoringExprs(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var rules struct {
		Groups []struct{ Rules []struct{ Expr string } }
	}
	unmarshalYAML(t, filepath.Join("prometheus", "alerts.yaml"), &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alerts.yaml"] = append(out["alerts.yaml"], r.Expr)
		}
	}
	var tests struct {
		Tests []struct {
			InputSeries []struct{ Series string } `yaml:"input_series"`
		}
	}
	unmarshalYAML(t, filepath.Join("prometheus", "alerts_test.yaml"), &tests)
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			out["alerts_test.yaml"] = append(out["alerts_test.yaml"], s.Series)
		}
	}
	out["outreach.json"] = dashboardExprs(t)
	for where, exprs := range out {
		if len(exprs) < 5 {
			t.Fatalf("%s: found only %d expressions", where, len(exprs))
		}
	}
	return out
}

type dashboardPanel struct {
	Targets []struct{ Expr string }
	Panels  []dashboardPanel
}

// dashboardExprs returns the expressions of every panel, rows' panels
// included, and the queries of the template variables.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var dash struct {
		Panels     []dashboardPanel
		Templating struct {
			List []struct {
				Type  string
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(readFile(t, filepath.Join("grafana", "outreach.json")), &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if json.Unmarshal(v.Query, &q.Query) != nil && json.Unmarshal(v.Query, &q) != nil {
			t.Errorf("template variable query %s is neither a string nor {query}", v.Query)
		}
		exprs = append(exprs, q.Query)
	}
	return exprs
}

func unmarshalYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func mapKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestPromtool checks the scrape configuration and the rules with
// Prometheus's own promtool, and runs the rules' unit tests.
func TestPromtool(t *testing.T) {
	promtool := needTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", "prometheus.yaml"},
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
