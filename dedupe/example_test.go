package dedupe_test

import (
	"fmt"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

func Example() {
	at := time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)
	p := dedupe.DefaultPolicy()

	req := dedupe.Request{CustomerID: "c-1042", Channel: contact.Call, Product: "broadband-500", Agent: "dialer-3"}
	if err := req.Normalize(at, contact.Defaults{}); err != nil {
		fmt.Println(err)
		return
	}

	// What the store read for the customer: the state its events made.
	facts := &contact.Facts{}
	for _, e := range []contact.Event{
		{ID: "e1", Type: contact.TypeContact, At: at.Add(-2 * time.Hour), Channel: contact.Call,
			Direction: contact.Outbound, Agent: "a.jones", Team: "retention", Outcome: "voicemail"},
		{ID: "p1", Type: contact.TypePurchase, At: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Product: "broadband-500", OrderID: "991"},
		{ID: "k1", Type: contact.TypeComplaint, At: at.Add(-3 * 24 * time.Hour), CaseID: "77", Status: contact.ComplaintOpened, Owner: "b.smith"},
	} {
		facts.State.Apply(&e, at, contact.Limits{})
	}

	d := dedupe.Decide(p, &req, facts, at)
	fmt.Println("allowed:", d.Allowed)
	for _, r := range d.Reasons {
		fmt.Printf("%s: %s\n", r.Code, r.Message)
	}

	// A service call is exempt from the cooldown, and the complaint only warns.
	req.Purpose, req.Product = "service", ""
	d = dedupe.Decide(p, &req, facts, at)
	fmt.Println("allowed:", d.Allowed)
	for _, r := range d.Reasons {
		fmt.Printf("%s (warning %v): %s\n", r.Code, r.Warning, r.Message)
	}
	// Output:
	// allowed: false
	// open_complaint: open complaint 77 (owner b.smith) since 3d ago
	// recent_contact: called by a.jones (retention) 2h ago, outcome voicemail
	// already_purchased: bought broadband-500 on 2026-03-02 (order 991)
	// allowed: true
	// open_complaint (warning true): open complaint 77 (owner b.smith) since 3d ago
}

func ExampleParsePolicy() {
	p, err := dedupe.ParsePolicy([]byte(`
cooldowns:
  call: 5d
campaigns:
  spring:
    frequency_cap: {window: 14d}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("contact window:", p.ContactWindow())

	_, err = dedupe.ParsePolicy([]byte("cooldowns:\n  call: 3x\nexempt:\n  service: [opted_out]\n"))
	fmt.Println(err)
	// Output:
	// contact window: 336h0m0s
	// policy: line 2: cooldowns.call: invalid duration "3x"
	// policy: line 4: exempt.service: opted_out cannot be exempted: an opt-out binds every purpose
}
