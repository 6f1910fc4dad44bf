package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/insight"
)

const marketingKey = "marketing-key"

// insightsKeysFile holds a marketing and an agent key.
func insightsKeysFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "keys")
	body := fmt.Sprintf("marketing %x\nagent %x\n", sha256.Sum256([]byte(marketingKey)), sha256.Sum256([]byte(agentKey)))
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// demoDecisions is a month of a contact centre's checks as the audit trail
// records them: the autumn-upgrade campaign, started three weeks ago, keeps
// running into the retention team's win-back calls; web offers undercut
// the telesales ones; some customers already own what is pitched.
func demoDecisions(now time.Time) []dedupe.Record {
	rnd := rand.New(rand.NewPCG(13, 2026))
	type source struct {
		campaign, team string
		weight         int
		start          int // days ago it started
	}
	sources := []source{{"autumn-upgrade", "telesales", 9, 21}, {"fiber-winback", "retention", 4, 30}, {"tv-bundle", "web", 3, 30},
		{"spring-retention", "retention", 2, 30}, {"", "care", 2, 30}}
	blocks := []dedupe.RecordReason{
		{Code: "recent_contact", Team: "retention", Campaign: "fiber-winback"}, {Code: "recent_contact", Team: "retention", Campaign: "fiber-winback"},
		{Code: "recent_contact", Team: "retention", Campaign: "fiber-winback"}, {Code: "recent_contact", Team: "telesales", Campaign: "autumn-upgrade"},
		{Code: "frequency_cap", Team: "retention", Campaign: "fiber-winback"}, {Code: "better_offer", Team: "web", Campaign: "tv-bundle", Product: "fiber-1000"},
		{Code: "already_purchased", Product: "fiber-500"}, {Code: "open_complaint", Team: "care"}, {Code: "claimed", Team: "retention"},
		{Code: "quiet_hours"}, {Code: "opted_out"}, {Code: "do_not_call", List: "national"},
	}
	var recs []dedupe.Record
	for day := 29; day >= 0; day-- {
		for _, s := range sources {
			if day > s.start {
				continue
			}
			n := s.weight * (3 + rnd.IntN(4))
			if s.campaign == "autumn-upgrade" {
				n += (21 - day) * 2 // the campaign ramps up
			}
			for range n {
				at := now.Truncate(24*time.Hour).AddDate(0, 0, -day).Add(time.Duration(8*60+rnd.IntN(12*60)) * time.Minute)
				if at.After(now) {
					continue
				}
				r := dedupe.Record{Kind: dedupe.RecordCheck, Time: at, CustomerID: fmt.Sprintf("c-%d", rnd.IntN(5000)), Allowed: true,
					Policy: "demo", Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales", Campaign: s.campaign, Team: s.team}}
				if rnd.IntN(100) < 45 {
					r.Allowed = false
					r.Reasons = []dedupe.RecordReason{blocks[rnd.IntN(len(blocks))]}
					if s.campaign == "autumn-upgrade" && rnd.IntN(3) > 0 {
						r.Reasons[0] = blocks[0]
					}
				}
				recs = append(recs, r)
			}
		}
	}
	return recs
}

// produceDecisions writes records to the daemon's decisions topic, as its
// audit trail does.
func (d daemon) produceDecisions(t *testing.T, recs []dedupe.Record) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(d.Kafka), Topic: "outreach.decisions", Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: time.Millisecond, BatchSize: 500, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	msgs := make([]kafka.Message, len(recs))
	for i := range recs {
		v, err := json.Marshal(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(recs[i].CustomerID), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce decisions: %v", err)
	}
}

// cspViolations records the page's CSP violations in window.cspViolations,
// from before its first script runs.
func cspViolations(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.cspViolations = [];
			document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`})
		return err
	}))
}

func TestInsightsPageInBrowser(t *testing.T) {
	ctx := browser(t)
	d := startDaemon(t, "OUTREACH_API_KEYS_FILE="+insightsKeysFile(t))
	now := time.Now().UTC()
	recs := demoDecisions(now)
	d.produceDecisions(t, recs)
	from := now.Truncate(24*time.Hour).AddDate(0, 0, -29)
	var want insight.Report
	counted := func() bool {
		resp, body := call(t, "GET", d.HTTP+"/v1/insights?by=campaign&from="+from.Format(time.RFC3339), marketingKey, "")
		want = insight.Report{}
		return resp.StatusCode == 200 && json.Unmarshal(body, &want) == nil && want.Checks == int64(len(recs))
	}
	deadline := time.Now().Add(60 * time.Second)
	for !counted() {
		if time.Now().After(deadline) {
			t.Fatalf("the insights count %d of %d records", want.Checks, len(recs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	cspViolations(t, ctx)

	// 1. The shell asks for a key; an agent's key is refused.
	do(t, ctx, chromedp.Navigate(d.HTTP+"/insights?range=30d"))
	waitFor(t, ctx, "the key prompt", `!document.querySelector('#auth').hidden`)
	if n := eval[int](t, ctx, `document.querySelectorAll('.chart').length`); n != 0 {
		t.Errorf("the page shows a chart before a key was given")
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("key-input"), agentKey+"\r"))
	waitFor(t, ctx, "the wrong role", `/marketing role/.test(document.querySelector('#auth-message').innerText) && !document.querySelector('#auth').hidden`)
	do(t, ctx, chromedp.SendKeys(chromedp.ID("key-input"), marketingKey+"\r"))
	waitFor(t, ctx, "the report", `document.querySelector('[data-testid=collisions]')`)

	// 2. The numbers are those of the API.
	wantText(t, ctx, "[data-testid=kpis]", fmt.Sprint(want.Checks), fmt.Sprint(want.Blocked))
	if bars := eval[int](t, ctx, `document.querySelectorAll('.chart .bar').length`); bars != 30 {
		t.Errorf("the chart has %d bars, want one per day of 30", bars)
	}
	wantText(t, ctx, "[data-testid=legend]", "Contacted recently", "Already bought", "A better offer stands")
	// The style sheet is in force: the chart has its size and its colours.
	if h := eval[float64](t, ctx, `document.querySelector('.chart').getBoundingClientRect().height`); h < 200 || h > 450 {
		t.Errorf("the chart is %.0fpx high at 1280px, want 200 to 450", h)
	}
	if fill := eval[string](t, ctx, `getComputedStyle(document.querySelector('.chart .seg-recent_contact')).fill`); fill != "rgb(29, 91, 191)" {
		t.Errorf("recent_contact is drawn in %s, want the style sheet's blue", fill)
	}
	autumn := want.Groups[0]
	top := autumn.Collisions[0]
	if autumn.Key != "autumn-upgrade" || top.AgainstTeam != "retention" || top.Mostly != "recent_contact" {
		t.Fatalf("the demo's top collision is %+v of %s", top, autumn.Key)
	}
	wantText(t, ctx, ".collisions tbody tr:first-child", "campaign autumn-upgrade × team retention", fmt.Sprint(top.Blocked), "recent_contact")
	wantText(t, ctx, `.shares tr[data-campaign="autumn-upgrade"]`, fmt.Sprint(autumn.Checks), fmt.Sprint(autumn.Blocked),
		fmt.Sprintf("%.0f%%", *autumn.BlockedShare*100))
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	screenshot(t, ctx, "insights-page-1280", false)
	png := screenshot(t, ctx, "insights-page-1280-full", true)
	if os.Getenv("OUTREACH_UPDATE_DOCS") != "" { // refreshes the README's screenshot, the whole page
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "insights-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// 3. The keyboard: the period changes from the select, and the numbers
	// open from their summary.
	do(t, ctx, chromedp.Focus(chromedp.ID("range")), chromedp.KeyEvent(kb.ArrowUp), chromedp.KeyEvent("\t"), chromedp.KeyEvent("\r"))
	waitFor(t, ctx, "the last 7 days", `/last 7 days/i.test(document.querySelector('.insights-head').innerText)`)
	if loc := run(t, ctx, chromedp.Location()); !strings.HasSuffix(loc, "/insights?range=7d") {
		t.Errorf("the address is %s, want ?range=7d", loc)
	}
	do(t, ctx, chromedp.Focus(chromedp.CSS(".numbers summary")), chromedp.KeyEvent("\r"))
	if !eval[bool](t, ctx, `document.querySelector('.numbers').open`) {
		t.Errorf("Enter on “Show the numbers” does not open them")
	}
	if rows := eval[int](t, ctx, `document.querySelectorAll('.numbers tbody tr').length`); rows != 7 {
		t.Errorf("the numbers have %d rows, want 7 days", rows)
	}
	if n := eval[int](t, ctx, `[...document.querySelectorAll('.chart-scroll, .table-scroll')].filter(e => e.tabIndex === 0).length`); n < 3 {
		t.Errorf("%d scrolling regions can take the focus, want the chart's and the tables'", n)
	}

	// 4. The narrow layout fits 400px: only the chart and the tables
	// scroll, inside their cards.
	do(t, ctx, chromedp.EmulateViewport(400, 860), chromedp.Reload())
	waitFor(t, ctx, "the narrow report", `document.querySelector('[data-testid=collisions]')`)
	noHorizontalOverflow(t, ctx)
	screenshot(t, ctx, "insights-page-400", false)
	screenshot(t, ctx, "insights-page-400-full", true)
	if v := eval[[]string](t, ctx, `window.cspViolations`); len(v) > 0 {
		t.Errorf("CSP violations: %v", v)
	}
}
