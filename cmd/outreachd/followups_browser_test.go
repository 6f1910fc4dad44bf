package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// followUpCases are open complaints of several teams and owners: overdue,
// upcoming, and one followed up by a recovery call.
func followUpCases(now time.Time) []map[string]any {
	at := func(d time.Duration) string { return now.Add(-d).UTC().Format(time.RFC3339) }
	h := time.Hour
	complaint := func(customer, caseID, owner, team, summary string, ago time.Duration) map[string]any {
		return map[string]any{"id": customer + "-" + caseID, "type": "complaint", "customer_id": customer, "at": at(ago),
			"case_id": caseID, "owner": owner, "team": team, "summary": summary}
	}
	return []map[string]any{
		complaint("c-2201", "CS-5102", "b.smith", "care", "Router replaced twice, still dropping", 100*h),
		complaint("c-2230", "CS-5140", "b.smith", "care", "Charged a cancellation fee after moving", 60*h),
		complaint("c-2318", "CS-5188", "m.okafor", "care", "Promised callback never came", 52*h),
		complaint("c-2402", "CS-5203", "", "billing", "Direct debit taken twice", 80*h),
		complaint("c-2477", "CS-5230", "m.okafor", "care", "Installer left cables across the garden", 20*h),
		complaint("c-2510", "CS-5241", "b.smith", "care", "Speed far below the contract", 90*h),
		{"id": "c-2201-r0", "type": "contact", "customer_id": "c-2201", "at": at(150 * h), "channel": "call",
			"purpose": "service", "agent": "l.meyer", "team": "care", "outcome": "connected"},
		{"id": "c-2510-r1", "type": "contact", "customer_id": "c-2510", "at": at(2 * h), "channel": "call",
			"purpose": "recovery", "agent": "l.meyer", "team": "care", "outcome": "connected"},
	}
}

func TestFollowUpsPageInBrowser(t *testing.T) {
	ctx := browser(t)
	d := startDaemon(t)
	cases := followUpCases(time.Now())
	d.produce(t, cases...)
	d.waitStored(t, "", "c-2510", 2)
	emulateAgent(t, ctx)

	do(t, ctx,
		chromedp.Navigate(d.HTTP+"/followups"),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=followups]")),
	)
	wantText(t, ctx, "#due-title", "Due", "4")
	wantText(t, ctx, "#upcoming-title", "Upcoming", "1")
	due := text(t, ctx, "section[aria-labelledby=due-title]")
	// Longest overdue first: c-2201 (due 52h ago) leads, under b.smith.
	for _, want := range []string{"b.smith", "c-2201", "CS-5102", "Router replaced twice", "Last recovery contact: Call by l.meyer", "c-2230", "m.okafor", "c-2318", "No owner", "c-2402", "billing"} {
		if !strings.Contains(due, want) {
			t.Errorf("the due section lacks %q:\n%s", want, due)
		}
	}
	if strings.Index(due, "c-2201") > strings.Index(due, "c-2318") {
		t.Error("c-2201, due longest, does not come first")
	}
	if strings.Contains(text(t, ctx, "[data-testid=followups]"), "c-2510") {
		t.Error("c-2510, followed up by a recovery call, is listed")
	}
	wantText(t, ctx, "section[aria-labelledby=upcoming-title]", "c-2477", "m.okafor")
	png := screenshot(t, ctx, "followups-1280", false)
	if os.Getenv("OUTREACH_UPDATE_DOCS") != "" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "followups-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Filter by team with the keyboard.
	do(t, ctx,
		chromedp.SendKeys(chromedp.CSS("input[name=team]"), "billing\r"),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=followups]")),
	)
	waitFor(t, ctx, "the billing filter", `location.search.includes('team=billing') && document.querySelector('#due-title')`)
	wantText(t, ctx, "#due-title", "1")
	wantText(t, ctx, "section[aria-labelledby=due-title]", "c-2402", "Direct debit taken twice")

	// A case links to the customer's page, whose banner says the
	// follow-up is due; a followed-up case says who did it.
	do(t, ctx, chromedp.Click(chromedp.CSS(`a[href="/customers/c-2402"]`)))
	waitFor(t, ctx, "c-2402's complaint", `document.querySelector('[data-testid=followup]')`)
	wantText(t, ctx, "[data-testid=followup]", "Follow-up due since 32 hours")
	do(t, ctx, chromedp.Navigate(d.HTTP+"/customers/c-2510"))
	waitFor(t, ctx, "c-2510's complaint", `document.querySelector('[data-testid=followup]')`)
	wantText(t, ctx, "[data-testid=followup]", "Followed up 2 hours ago by l.meyer")
	do(t, ctx, chromedp.Navigate(d.HTTP+"/customers/c-2201"))
	waitFor(t, ctx, "c-2201's complaint", `document.querySelector('[data-testid=followup]')`)
	wantText(t, ctx, "[data-testid=followup]", fmt.Sprintf("Follow-up due since %d days, owner b.smith", 2))

	// The narrow layout fits 400px.
	do(t, ctx, chromedp.EmulateViewport(400, 860), chromedp.Navigate(d.HTTP+"/followups"))
	waitFor(t, ctx, "the narrow follow-ups", `document.querySelector('[data-testid=followups]')`)
	noHorizontalOverflow(t, ctx)
	screenshot(t, ctx, "followups-400", false)
}
