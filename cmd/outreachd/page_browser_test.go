package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/internal/testenv"
)

// The browser tests drive the agent page of the real outreachd binary, on
// its embedded Redis and Kafka, in Debian's headless Chromium.

const chromiumPath = "/usr/bin/chromium"

// browserWait bounds every single browser step; a whole test is bounded by
// the go test timeout and by the test's own context.
const browserWait = 20 * time.Second

// demoCustomer is the customer of the realistic history that the docs
// screenshot shows.
const demoCustomer = "c-1042"

// daemon is an outreachd binary on its embedded default.
type daemon struct {
	HTTP  string // base URL, http://127.0.0.1:PORT
	Kafka string // the embedded broker's address
	Stop  func() // stops it; the test's cleanup does too
}

// startDaemon runs the real outreachd on its embedded Redis and Kafka, on
// free ports.
func startDaemon(t *testing.T, env ...string) daemon {
	t.Helper()
	d := testenv.StartDaemon(t, testenv.Build(t, "."), env...)
	if d.Kafka == "" {
		t.Fatalf("outreachd logged no embedded kafka address; logs:\n%s", d.Logs())
	}
	return daemon{HTTP: d.URL, Kafka: d.Kafka, Stop: d.Stop}
}

// produce writes events to the daemon's broker, keyed by customer id, as a
// dialer's system would.
func (d daemon) produce(t *testing.T, events ...map[string]any) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(d.Kafka), Topic: "outreach.events", Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	msgs := make([]kafka.Message, len(events))
	for i, e := range events {
		v, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(e["customer_id"].(string)), Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// waitStored waits until the timeline of customer holds n events: the
// consumer applies them asynchronously.
func (d daemon) waitStored(t *testing.T, key, customer string, n int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, fmt.Sprintf("%d events of %s stored", n, customer), func() bool {
		resp, body := call(t, "GET", d.HTTP+"/v1/customers/"+url.PathEscape(customer)+"/contacts?limit=1000", key, "")
		var tl struct{ Events []json.RawMessage }
		return resp.StatusCode == 200 && json.Unmarshal(body, &tl) == nil && len(tl.Events) == n
	})
}

// demoHistory is a realistic history of a customer in service recovery: a
// broadband customer with a technician who did not come, an open complaint,
// an upgrade offer, and an opt-out of text messages.
func demoHistory(customer string, now time.Time) []map[string]any {
	at := func(d time.Duration) string { return now.Add(-d).UTC().Format(time.RFC3339) }
	in := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
	day := 24 * time.Hour
	ev := func(id, typ string, ago time.Duration, fields map[string]any) map[string]any {
		fields["id"], fields["type"], fields["customer_id"], fields["at"] = customer+"-"+id, typ, customer, at(ago)
		return fields
	}
	return []map[string]any{
		ev("p1", "purchase", 210*day, map[string]any{"product": "fiber-500", "price": 39, "currency": "EUR", "order_id": "A-88213", "channel": "call"}),
		ev("x0", "complaint", 120*day, map[string]any{"case_id": "CS-3120", "owner": "m.okafor", "summary": "Billed twice for May"}),
		ev("x0r", "complaint", 112*day, map[string]any{"case_id": "CS-3120", "status": "resolved", "owner": "m.okafor"}),
		ev("p2", "purchase", 61*day, map[string]any{"product": "tv-basic", "price": 12, "currency": "EUR", "order_id": "A-90417"}),
		ev("m1", "contact", 58*day, map[string]any{"channel": "mail", "campaign": "welcome-tv", "purpose": "info", "product": "tv-basic", "outcome": "delivered"}),
		ev("e1", "contact", 9*day, map[string]any{"channel": "email", "agent": "campaigns", "team": "marketing", "campaign": "autumn-upgrade", "purpose": "sales",
			"product": "fiber-1000", "offer": map[string]any{"id": "o-1000-45", "price": 45, "currency": "EUR", "expires_at": in(12 * day)}, "outcome": "delivered"}),
		ev("c1", "contact", 6*day, map[string]any{"channel": "call", "direction": "inbound", "agent": "m.okafor", "team": "support", "purpose": "service", "outcome": "connected"}),
		ev("s1", "contact", 5*day+3*time.Hour, map[string]any{"channel": "sms", "agent": "campaigns", "team": "marketing", "campaign": "autumn-upgrade", "purpose": "sales",
			"product": "fiber-1000", "outcome": "delivered"}),
		ev("x1", "complaint", 5*day, map[string]any{"case_id": "CS-4471", "owner": "r.haddad", "product": "fiber-500",
			"summary": "Technician missed two appointments; no internet for five days"}),
		ev("o1", "opt_out", 4*day, map[string]any{"channel": "sms", "reason": "Stop texting me until my line works"}),
		ev("ch1", "contact", 26*time.Hour, map[string]any{"channel": "chat", "direction": "inbound", "agent": "l.meyer", "team": "support", "purpose": "service", "outcome": "connected"}),
		ev("c2", "contact", 3*time.Hour, map[string]any{"channel": "call", "agent": "r.haddad", "team": "care", "campaign": "recovery", "purpose": "recovery", "outcome": "callback_requested"}),
	}
}

// browser starts a headless Chromium for the test, or skips the test when
// there is none. The returned context runs in one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("builds outreachd and drives a browser")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium at %s in CI: .ci/run installs it", chromiumPath)
		}
		t.Skipf("no Chromium at %s (apt-get install -y chromium); the browser tests of the agent page do not run", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "Translate"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-GB"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser and binds it to ctx: no timeout here.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	do(t, ctx, chromedp.EmulateViewport(1280, 800))
	return ctx
}

// do runs browser actions under browserWait.
func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// run runs one browser action that returns a value, under browserWait.
func run[T any](t *testing.T, ctx context.Context, action chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(tctx, action)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return run(t, ctx, chromedp.Evaluate[T](js))
}

// waitFor waits until a JavaScript expression is truthy. It evaluates the
// expression afresh every 50ms, so that a navigation in between does no harm.
func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	var err error
	for time.Now().Before(deadline) {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var ok bool
		ok, err = chromedp.Run(tctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	shown, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body.innerText`))
	t.Fatalf("timed out after %v waiting for %s (last error: %v); the page shows:\n%s", browserWait, what, err, shown)
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ''}).innerText`, css))
}

func wantText(t *testing.T, ctx context.Context, css string, want ...string) {
	t.Helper()
	got := text(t, ctx, css)
	for _, w := range want {
		// Case-insensitive: the style sheet capitalises some labels.
		if !strings.Contains(strings.ToLower(got), strings.ToLower(w)) {
			t.Errorf("%s shows %q, want it to contain %q", css, got, w)
		}
	}
}

// screenshotDir is where the browser tests save their screenshots:
// OUTREACH_SCREENSHOT_DIR, or a temporary directory that is kept.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OUTREACH_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "outreach-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the viewport, or the whole page, as name.png, and
// returns the image.
func screenshot(t *testing.T, ctx context.Context, name string, fullPage bool) []byte {
	t.Helper()
	action := chromedp.CaptureScreenshot()
	if fullPage {
		action = chromedp.FullScreenshot(100)
	}
	png := run(t, ctx, action)
	path := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return png
}

// emulateAgent makes the browser an agent in Kolkata with British English,
// so that local times differ from UTC by a half hour and are 24-hour.
func emulateAgent(t *testing.T, ctx context.Context) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: loc.String()}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: "en_GB"})
		return err
	}))
	return loc
}

// askCheck fills "Can I call now?", submits it and returns the verdict's
// allowed flag and reason codes.
func askCheck(t *testing.T, ctx context.Context, channel, purpose, product, price string) (bool, []string) {
	t.Helper()
	fields, err := json.Marshal(map[string]string{"check-channel": channel, "check-purpose": purpose, "check-product": product, "check-price": price})
	if err != nil {
		t.Fatal(err)
	}
	do(t, ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('.verdict-area').replaceChildren();
			for (const [id, v] of Object.entries(`+string(fields)+`)) {
				const el = document.getElementById(id);
				el.value = v;
				el.dispatchEvent(new Event('change', {bubbles: true}));
			}`),
		chromedp.Click(chromedp.CSS(".check-form button[type=submit]")),
	)
	waitFor(t, ctx, "the verdict", `document.querySelector('.verdict-area .verdict')`)
	allowed := eval[string](t, ctx, `document.querySelector('.verdict').dataset.allowed`)
	codes := eval[[]string](t, ctx, `[...document.querySelectorAll('.verdict .reason')].map(r => r.dataset.code)`)
	return allowed == "true", codes
}

func timelineIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return eval[[]string](t, ctx, `[...document.querySelectorAll('.timeline > li')].map(li => li.dataset.event)`)
}

// noHorizontalOverflow fails when the page is wider than the viewport.
func noHorizontalOverflow(t *testing.T, ctx context.Context) {
	t.Helper()
	widths := eval[[]int](t, ctx, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`)
	if widths[0] > widths[1] {
		wide := eval[[]string](t, ctx, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className)`)
		t.Errorf("the page is %dpx wide in a %dpx viewport; too wide: %v", widths[0], widths[1], wide)
	}
}

func TestAgentPageInBrowser(t *testing.T) {
	ctx := browser(t)
	d := startDaemon(t)
	now := time.Now()
	history := demoHistory(demoCustomer, now)
	d.produce(t, history...)
	d.waitStored(t, "", demoCustomer, len(history))
	loc := emulateAgent(t, ctx)

	// 1. Open the page and 2. search the customer, with the keyboard.
	do(t, ctx,
		chromedp.Navigate(d.HTTP+"/"),
		chromedp.WaitVisible(chromedp.ID("customer-search")),
		chromedp.SendKeys(chromedp.ID("customer-search"), demoCustomer+"\r"),
	)
	waitFor(t, ctx, "the customer's timeline", `document.querySelectorAll('.timeline > li').length > 0`)
	if loc := run(t, ctx, chromedp.Location()); !strings.HasSuffix(loc, "/customers/"+demoCustomer) {
		t.Errorf("the search went to %s, want /customers/%s", loc, demoCustomer)
	}

	// 3. The timeline, newest first, and the badges show the events.
	var want []string
	for i := len(history) - 1; i >= 0; i-- {
		want = append(want, history[i]["id"].(string))
	}
	if got := timelineIDs(t, ctx); !slices.Equal(got, want) {
		t.Errorf("timeline = %v, want newest first %v", got, want)
	}
	wantText(t, ctx, "[data-testid=complaints]", "Open complaint", "CS-4471", "r.haddad", "Technician missed two appointments")
	wantText(t, ctx, "[data-testid=followup]", "Followed up 3 hours ago by r.haddad")
	if strings.Contains(text(t, ctx, "[data-testid=complaints]"), "CS-3120") {
		t.Errorf("the resolved complaint CS-3120 shows as open")
	}
	wantText(t, ctx, "[data-testid=products]", "fiber-500", "tv-basic", "39.00 EUR")
	wantText(t, ctx, "[data-testid=offers]", "fiber-1000 at 45.00 EUR")
	wantText(t, ctx, "[data-testid=optouts]", "No SMS", "Stop texting me")
	wantText(t, ctx, ".timeline > li:first-child", "Call", "outbound", "r.haddad", "care", "callback requested", "recovery")
	wantText(t, ctx, ".ev-purchase", "Bought", "Order")
	wantText(t, ctx, ".ev-complaint", "Complaint opened", "CS-4471")
	wantText(t, ctx, ".ev-complaint-resolved", "Complaint resolved", "CS-3120")
	wantText(t, ctx, ".ev-opt", "Opted out of SMS")
	wantText(t, ctx, ".ev-complaint-closed", "Complaint opened", "since resolved", "CS-3120")
	if n := eval[int](t, ctx, `document.querySelectorAll('.ev-contact .dir-inbound').length`); n != 2 {
		t.Errorf("%d inbound contacts shown, want 2", n)
	}
	// Times are the agent's local time.
	first, _ := time.Parse(time.RFC3339, history[len(history)-1]["at"].(string))
	if abs, local := text(t, ctx, ".timeline > li:first-child .abs"), first.In(loc).Format("15:04"); !strings.Contains(abs, local) {
		t.Errorf("the newest event shows %q, want the local time %s (Asia/Kolkata)", abs, local)
	}
	wantText(t, ctx, ".timeline > li:first-child .rel", "3 hours ago")

	// 4. "Can I call now?" shows every reason.
	allowed, codes := askCheck(t, ctx, "call", "sales", "fiber-1000", "49")
	if allowed || !slices.Equal(codes, []string{"open_complaint", "recent_contact", "better_offer"}) {
		t.Errorf("sales call: allowed=%v reasons %v, want blocked by open_complaint, recent_contact, better_offer", allowed, codes)
	}
	wantText(t, ctx, ".verdict", "No, do not call now", "open complaint CS-4471", "r.haddad", "45.00 EUR")
	do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	png := screenshot(t, ctx, "agent-page-1280", false)
	if os.Getenv("OUTREACH_UPDATE_DOCS") != "" { // refreshes the README's screenshot
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "agent-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	screenshot(t, ctx, "agent-page-1280-full", true)

	allowed, codes = askCheck(t, ctx, "call", "recovery", "", "")
	if !allowed || !slices.Equal(codes, []string{"open_complaint"}) {
		t.Errorf("recovery call: allowed=%v reasons %v, want allowed with the open_complaint warning", allowed, codes)
	}
	wantText(t, ctx, ".verdict", "Yes, you may call now", "does not block")

	// A colleague's dialer claims the customer: the page shows who is
	// calling, and the check says so.
	resp, body := call(t, "POST", d.HTTP+"/v1/check", "",
		`{"customer_id":"`+demoCustomer+`","channel":"call","purpose":"recovery","agent":"r.haddad","campaign":"recovery","claim":true}`)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"token"`)) {
		t.Fatalf("claim: %d %s", resp.StatusCode, body)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("button[data-action=refresh]")))
	waitFor(t, ctx, "the claim", `document.querySelector('[data-testid=claim]')`)
	wantText(t, ctx, "[data-testid=claim]", "r.haddad is calling this customer now", "recovery")
	allowed, codes = askCheck(t, ctx, "email", "service", "", "")
	if allowed || !slices.Equal(codes, []string{"claimed", "open_complaint"}) {
		t.Errorf("email during a claim: allowed=%v reasons %v, want blocked by claimed", allowed, codes)
	}

	// 5. The narrow layout fits 400px without scrolling sideways.
	do(t, ctx, chromedp.EmulateViewport(400, 860), chromedp.Reload())
	waitFor(t, ctx, "the narrow timeline", `document.querySelectorAll('.timeline > li').length > 0`)
	noHorizontalOverflow(t, ctx)
	screenshot(t, ctx, "agent-page-400", false)
	screenshot(t, ctx, "agent-page-400-full", true)
}

func TestAgentPagePaginationAndUnknownCustomer(t *testing.T) {
	ctx := browser(t)
	d := startDaemon(t)
	now := time.Now()
	const n = 32
	var events []map[string]any
	for i := range n {
		events = append(events, map[string]any{"id": fmt.Sprintf("long-%02d", i), "type": "contact", "customer_id": "c-long",
			"at": now.Add(-time.Duration(n-i) * time.Hour).UTC().Format(time.RFC3339), "channel": "email", "campaign": "newsletter", "outcome": "sent"})
	}
	d.produce(t, events...)
	d.waitStored(t, "", "c-long", n)

	do(t, ctx, chromedp.Navigate(d.HTTP+"/customers/c-long"))
	waitFor(t, ctx, "the first page", `document.querySelectorAll('.timeline > li').length > 0`)
	ids := timelineIDs(t, ctx)
	if len(ids) != 25 || ids[0] != "long-31" {
		t.Fatalf("first page = %v, want 25 events from long-31", ids)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("button[data-action=more]")))
	waitFor(t, ctx, "the second page", `document.querySelectorAll('.timeline > li').length === 32`)
	ids = timelineIDs(t, ctx)
	if ids[31] != "long-00" || len(slices.Compact(slices.Clone(ids))) != n {
		t.Errorf("after Show older: %v, want all 32 once, oldest last", ids)
	}
	if eval[bool](t, ctx, `!!document.querySelector('button[data-action=more]')`) {
		t.Errorf("the last page still offers older contacts")
	}
	if focused := eval[string](t, ctx, `document.activeElement.dataset.event || ''`); focused != "long-06" {
		t.Errorf("focus after Show older is on %q, want the first new entry long-06", focused)
	}

	do(t, ctx, chromedp.Navigate(d.HTTP+"/customers/nobody-here"))
	waitFor(t, ctx, "the empty panel", `document.querySelector('[data-testid=empty]')`)
	wantText(t, ctx, "[data-testid=empty]", "No contacts recorded")
	if eval[bool](t, ctx, `!!document.querySelector('[data-testid=complaints]')`) {
		t.Errorf("an unknown customer shows complaints")
	}
	screenshot(t, ctx, "agent-page-unknown", false)

	// The service goes away: the page says so, and is never blank.
	d.Stop()
	do(t, ctx, chromedp.Click(chromedp.CSS("button[data-action=refresh]")))
	waitFor(t, ctx, "the unreachable banner", `document.querySelector('#notice .alert')`)
	wantText(t, ctx, "#notice", "cannot be reached", "Try again")
	wantText(t, ctx, "#panel", "nobody-here")
	if !eval[bool](t, ctx, `document.querySelector('#panel').classList.contains('is-stale')`) {
		t.Errorf("the panel of an unreachable service is not marked out of date")
	}
	screenshot(t, ctx, "agent-page-unreachable", false)
}

func TestAgentPageWithAuthInBrowser(t *testing.T) {
	ctx := browser(t)
	d := startDaemon(t, "OUTREACH_API_KEYS_FILE="+keysFile(t))
	history := demoHistory("c-77", time.Now())
	d.produce(t, history...)
	d.waitStored(t, agentKey, "c-77", len(history))

	do(t, ctx, chromedp.Navigate(d.HTTP+"/customers/c-77"))
	waitFor(t, ctx, "the key prompt", `!document.querySelector('#auth').hidden`)
	if eval[int](t, ctx, `document.querySelectorAll('.timeline > li').length`) != 0 {
		t.Errorf("the page shows the timeline before a key was given")
	}
	screenshot(t, ctx, "agent-page-key-prompt", false)

	// A wrong key, then a key of the wrong role, then the agent's key.
	do(t, ctx, chromedp.SendKeys(chromedp.ID("key-input"), "not-a-key\r"))
	waitFor(t, ctx, "the rejection", `document.querySelector('#auth-message.is-error') && !document.querySelector('#auth').hidden`)
	wantText(t, ctx, "#auth-message", "not accepted")
	screenshot(t, ctx, "agent-page-bad-key", false)

	do(t, ctx, chromedp.SendKeys(chromedp.ID("key-input"), dialerKey+"\r"))
	waitFor(t, ctx, "the wrong role", `/agent role/.test(document.querySelector('#auth-message').innerText) && !document.querySelector('#auth').hidden`)

	do(t, ctx, chromedp.SendKeys(chromedp.ID("key-input"), agentKey+"\r"))
	waitFor(t, ctx, "the timeline", `document.querySelectorAll('.timeline > li').length === `+fmt.Sprint(len(history)))
	if !eval[bool](t, ctx, `document.querySelector('#auth').hidden`) {
		t.Errorf("the key prompt stays after a good key")
	}
	allowed, codes := askCheck(t, ctx, "call", "sales", "", "")
	if allowed || !slices.Contains(codes, "open_complaint") {
		t.Errorf("check with the agent key: allowed=%v reasons %v", allowed, codes)
	}

	// The key is in sessionStorage only: not in the URL, a cookie or the page.
	state := eval[[]string](t, ctx, `[location.href, document.cookie, sessionStorage.getItem('outreach.key') || '', document.documentElement.outerHTML]`)
	if strings.Contains(state[0], agentKey) || strings.Contains(state[1], agentKey) || strings.Contains(state[3], agentKey) {
		t.Errorf("the key leaks into the URL, a cookie or the page: %q %q", state[0], state[1])
	}
	if state[2] != agentKey {
		t.Errorf("sessionStorage holds %q, want the agent key", state[2])
	}

	// A reload keeps the key of the tab; "Change key" forgets it.
	do(t, ctx, chromedp.Reload())
	waitFor(t, ctx, "the timeline after a reload", `document.querySelectorAll('.timeline > li').length > 0`)
	do(t, ctx, chromedp.Click(chromedp.ID("key-change")))
	waitFor(t, ctx, "the key prompt", `!document.querySelector('#auth').hidden`)
	if eval[string](t, ctx, `sessionStorage.getItem('outreach.key') || ''`) != "" {
		t.Errorf("Change key kept the old key")
	}
}
