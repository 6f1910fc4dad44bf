// Package contacttest generates random customer histories for property
// tests of the state, the store and the decision.
package contacttest

import (
	"encoding/json"
	"fmt"
	"time"

	"pgregory.net/rapid"

	"github.com/outreach/outreach/contact"
)

// T0 is the time the generated histories lead up to.
var T0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// GenEvent draws a valid event of one customer. Times and ids come from small
// sets, so that ties of one instant and reused ids happen often.
func GenEvent(t *rapid.T, label string) contact.Event {
	e := contact.Event{
		ID:         "e" + fmt.Sprint(rapid.IntRange(0, 40).Draw(t, label+".id")),
		CustomerID: "c1",
		At:         T0.Add(-time.Duration(rapid.IntRange(0, 10).Draw(t, label+".at")) * time.Hour),
	}
	// The same id always makes the same event: ids are unique.
	r := rapid.IntRange(0, 6).Draw(t, label+".type")
	channel := contact.Channels[rapid.IntRange(0, len(contact.Channels)-1).Draw(t, label+".channel")]
	switch r {
	case 0, 1:
		e.Type, e.Channel = contact.TypeContact, channel
		e.Agent = rapid.SampledFrom([]string{"", "a1", "a2"}).Draw(t, label+".agent")
		e.Purpose = rapid.SampledFrom([]string{"", "sales", "service", "recovery"}).Draw(t, label+".purpose")
		e.Direction = rapid.SampledFrom([]contact.Direction{contact.Outbound, contact.Outbound, contact.Inbound}).Draw(t, label+".direction")
		if r == 1 {
			e.Product = "p"
			e.Offer = &contact.Offer{Price: &contact.Money{Minor: int64(rapid.IntRange(1, 5).Draw(t, label+".price")) * 100, Currency: "EUR"}}
		}
	case 2:
		e.Type, e.Product = contact.TypePurchase, "p"+fmt.Sprint(rapid.IntRange(0, 2).Draw(t, label+".product"))
	case 3:
		e.Type, e.CaseID = contact.TypeComplaint, "k"+fmt.Sprint(rapid.IntRange(0, 2).Draw(t, label+".case"))
		e.Status = rapid.SampledFrom([]string{contact.ComplaintOpened, contact.ComplaintResolved}).Draw(t, label+".status")
		e.Owner = rapid.SampledFrom([]string{"", "a1", "a2"}).Draw(t, label+".owner")
		e.Team = rapid.SampledFrom([]string{"t1", "t2"}).Draw(t, label+".team")
	case 4:
		e.Type = contact.TypeOptOut
		if rapid.Bool().Draw(t, label+".all") {
			channel = contact.AllChannels
		}
		e.Channel = channel
	case 5:
		e.Type, e.Channel = contact.TypeOptIn, channel
	case 6:
		e.Type, e.Timezone = contact.TypeProfile, rapid.SampledFrom([]string{"Europe/Oslo", "America/New_York"}).Draw(t, label+".zone")
	}
	if err := e.Normalize(contact.Defaults{}); err != nil {
		t.Fatalf("generated an invalid event: %v", err)
	}
	return e
}

// GenHistory draws events with unique ids: the first event drawn of an id is
// that id's event.
func GenHistory(t *rapid.T) []contact.Event {
	drawn := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) contact.Event { return GenEvent(t, "e") }), 0, 30).Draw(t, "events")
	seen := map[string]bool{}
	var out []contact.Event
	for _, e := range drawn {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// Describe writes every part of s, in a stable order, for comparisons.
func Describe(s contact.State) string {
	v := struct {
		Consent      map[contact.Channel]contact.Event
		Cases        map[string]contact.Event
		LastContacts map[contact.Channel]contact.Event
		Purchases    map[string]contact.Event
		Profile      *contact.Event
		Recent       []contact.Stamp
		Offers       []contact.Event
	}{s.Consent, s.Cases, s.LastContacts, s.Purchases, s.Profile, s.Recent, s.Offers}
	if len(v.Recent) == 0 {
		v.Recent = nil
	}
	if len(v.Offers) == 0 {
		v.Offers = nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
