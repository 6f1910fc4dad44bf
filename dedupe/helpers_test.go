package dedupe_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// now is the time of every request in the tests: a Friday, noon UTC.
var now = time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)

func before(d time.Duration) time.Time { return now.Add(-d) }

const day = 24 * time.Hour

func mustParse(tb testing.TB, yaml string) *dedupe.Policy {
	tb.Helper()
	p, err := dedupe.ParsePolicy([]byte(yaml))
	if err != nil {
		tb.Fatalf("ParsePolicy: %v", err)
	}
	return p
}

// outbound is a call-centre contact; the options adjust it.
func outbound(id string, ch contact.Channel, at time.Time, opts ...func(*contact.Event)) contact.Event {
	e := contact.Event{ID: id, Type: contact.TypeContact, CustomerID: "c1", At: at, Channel: ch,
		Direction: contact.Outbound, Purpose: "sales", Agent: "a.jones", Team: "retention", Outcome: "voicemail"}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func inbound(e *contact.Event) { e.Direction = contact.Inbound }

func eur(units int64) *contact.Money { return &contact.Money{Minor: units * 100, Currency: "EUR"} }

// state is the facts of a customer with events es, merged at now.
func state(es ...contact.Event) contact.Facts { return with(contact.Facts{}, es...) }

// with adds the events es to the state of f.
func with(f contact.Facts, es ...contact.Event) contact.Facts {
	for i := range es {
		f.State.Apply(&es[i], now, contact.Limits{})
	}
	return f
}

func profile(zone string) contact.Event {
	return contact.Event{ID: "z-" + zone, Type: contact.TypeProfile, CustomerID: "c1", At: before(day), Timezone: zone}
}

func profilePhones(phones ...string) contact.Event {
	return contact.Event{ID: "zp", Type: contact.TypeProfile, CustomerID: "c1", At: before(day), Phones: phones}
}

func timePtr(t time.Time) *time.Time { return &t }

// offer is a contact that offered product at p, valid until expires (nil:
// the policy's default validity).
func offer(id string, ch contact.Channel, at time.Time, product string, p int64, expires *time.Time) contact.Event {
	e := outbound(id, ch, at)
	e.Product = product
	e.Offer = &contact.Offer{ID: "of-" + id, Price: eur(p), ExpiresAt: expires}
	return e
}

func purchase(id, product string, at time.Time) contact.Event {
	return contact.Event{ID: id, Type: contact.TypePurchase, CustomerID: "c1", At: at, Product: product, OrderID: "991", Channel: contact.Call}
}

func complaint(id, caseID, status string, at time.Time) contact.Event {
	return contact.Event{ID: id, Type: contact.TypeComplaint, CustomerID: "c1", At: at, CaseID: caseID, Status: status, Owner: "b.smith"}
}

func opt(id string, typ contact.Type, ch contact.Channel, at time.Time) contact.Event {
	return contact.Event{ID: id, Type: typ, CustomerID: "c1", At: at, Channel: ch, Reason: "stop calling"}
}

func toJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
