// Package eventgen makes realistic, valid outreach events for benchmarks and
// load tests: mostly contacts by agents of teams in campaigns, some with an
// offer, and purchases, complaints (about one of a few cases per customer),
// opt-outs and opt-ins among them.
//
// A Generator is deterministic for a seed, so two runs store the same data.
package eventgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/outreach/outreach/contact"
)

// CustomerID is the id of the i-th of a generator's customers. The load
// harness and the benchmarks share it, so that reads find what was written.
func CustomerID(i int) string { return "cust-" + strconv.Itoa(i) }

// Generator makes events. It is not safe for concurrent use; give each
// goroutine its own.
type Generator struct {
	rng       *rand.Rand
	customers int
	idPrefix  string
	now       time.Time
	span      time.Duration
	n         int
}

// New returns a Generator of events for customers CustomerID(0) to
// CustomerID(customers-1), at most span before now (at millisecond
// precision), with ids idPrefix followed by a sequence number. Use an
// idPrefix unique to a run when the events must be new to the store.
func New(seed uint64, customers int, idPrefix string, now time.Time, span time.Duration) *Generator {
	return &Generator{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		customers: max(customers, 1),
		idPrefix:  idPrefix,
		now:       now.UTC().Truncate(time.Millisecond),
		span:      max(span, time.Millisecond),
	}
}

// Batch returns n events of random customers.
func (g *Generator) Batch(n int) []contact.Event {
	events := make([]contact.Event, n)
	for i := range events {
		events[i] = g.Next()
	}
	return events
}

// Next returns an event of a random customer.
func (g *Generator) Next() contact.Event {
	return g.For(CustomerID(g.rng.IntN(g.customers)))
}

// casesPerCustomer is how many complaint cases a customer has: each
// complaint opens or resolves one of them, so a long history holds a few
// cases, each opened and maybe resolved, rather than hundreds open at once.
const casesPerCustomer = 3

// Mix of event types, in percent.
const (
	pctContact   = 70
	pctPurchase  = 12
	pctComplaint = 6
	pctOptOut    = 8
	// the rest, 4%, opt in again
)

var (
	teams     = []string{"retention", "sales-north", "sales-south", "winback", "care", "collections", "upsell", "onboarding"}
	products  = []string{"fiber-100", "fiber-500", "fiber-1000", "mobile-s", "mobile-m", "mobile-l", "tv-basic", "tv-sports", "bundle-home"}
	callEnds  = []string{"connected", "voicemail", "no_answer", "busy", "sale", "refused", "callback_requested", "complaint"}
	sentEnds  = []string{"sent", "delivered", "delivered", "delivered", "bounced"}
	summaries = []string{"billing dispute over last invoice", "technician missed the appointment", "too many sales calls", "speed below contract", "wrong product activated"}
	reasons   = []string{"customer request", "too many calls", "moved abroad", "regulatory request", ""}
)

// For returns an event of the given customer.
func (g *Generator) For(customerID string) contact.Event {
	g.n++
	e := contact.Event{
		ID:         g.idPrefix + strconv.Itoa(g.n),
		CustomerID: customerID,
		At:         g.now.Add(-time.Duration(g.rng.Int64N(int64(g.span)))).Truncate(time.Millisecond),
	}
	switch p := g.rng.IntN(100); {
	case p < pctContact:
		g.contact(&e)
	case p < pctContact+pctPurchase:
		e.Type = contact.TypePurchase
		e.Product = pick(g, products)
		e.Price = &contact.Money{Minor: int64(1000 + 100*g.rng.IntN(90)), Currency: "EUR"}
		e.OrderID = fmt.Sprintf("ord-%08d", g.rng.IntN(100_000_000))
		if g.rng.IntN(2) == 0 {
			e.Channel = contact.Call
		}
	case p < pctContact+pctPurchase+pctComplaint:
		e.Type = contact.TypeComplaint
		e.CaseID = fmt.Sprintf("case-%s-%d", customerID, g.rng.IntN(casesPerCustomer))
		if g.rng.IntN(3) == 0 {
			e.Status = contact.ComplaintResolved
		}
		e.Summary = pick(g, summaries)
		e.Owner = fmt.Sprintf("agent-%03d", g.rng.IntN(300))
	case p < pctContact+pctPurchase+pctComplaint+pctOptOut:
		e.Type = contact.TypeOptOut
		g.optChannel(&e)
	default:
		e.Type = contact.TypeOptIn
		g.optChannel(&e)
	}
	if err := e.Normalize(contact.Defaults{}); err != nil {
		panic("eventgen: generated an invalid event: " + err.Error())
	}
	return e
}

func (g *Generator) contact(e *contact.Event) {
	e.Type = contact.TypeContact
	switch p := g.rng.IntN(100); {
	case p < 55:
		e.Channel = contact.Call
	case p < 75:
		e.Channel = contact.SMS
	case p < 92:
		e.Channel = contact.Email
	case p < 97:
		e.Channel = contact.Chat
	case p < 99:
		e.Channel = contact.Mail
	default:
		e.Channel = contact.Visit
	}
	if g.rng.IntN(100) < 15 {
		e.Direction = contact.Inbound
	}
	e.Agent = fmt.Sprintf("agent-%03d", g.rng.IntN(300))
	e.Team = pick(g, teams)
	if g.rng.IntN(100) < 60 {
		e.Campaign = fmt.Sprintf("campaign-2026-%02d", g.rng.IntN(40))
	}
	e.Purpose = pick(g, contact.Purposes)
	if e.Channel == contact.Call || e.Channel == contact.Visit {
		e.Outcome = pick(g, callEnds)
	} else {
		e.Outcome = pick(g, sentEnds)
	}
	if g.rng.IntN(100) < 40 {
		e.Product = pick(g, products)
	}
	if g.rng.IntN(100) < 20 {
		expires := e.At.Add(14 * 24 * time.Hour)
		e.Offer = &contact.Offer{
			ID:        fmt.Sprintf("offer-%04d", g.rng.IntN(10_000)),
			Price:     &contact.Money{Minor: int64(500 + 100*g.rng.IntN(60)), Currency: "EUR"},
			ExpiresAt: &expires,
		}
	}
}

func (g *Generator) optChannel(e *contact.Event) {
	if g.rng.IntN(2) == 0 {
		e.Channel = contact.Channels[g.rng.IntN(len(contact.Channels))]
	}
	e.Reason = pick(g, reasons)
}

func pick(g *Generator, from []string) string { return from[g.rng.IntN(len(from))] }
