package eventgen_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/outreach/outreach/bench/eventgen"
	"github.com/outreach/outreach/contact"
)

var now = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func TestEventsRoundTripThroughDecode(t *testing.T) {
	g := eventgen.New(1, 100, "ev-", now, 30*24*time.Hour)
	types := map[contact.Type]int{}
	offers := 0
	for range 5000 {
		e := g.Next()
		types[e.Type]++
		if e.Offer != nil {
			offers++
		}
		if e.At.After(now) || e.At.Before(now.Add(-30*24*time.Hour)) {
			t.Fatalf("event %s at %v, outside the span", e.ID, e.At)
		}
		b, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := contact.Decode(b, contact.Defaults{})
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", b, got, e)
		}
	}
	for _, typ := range []contact.Type{contact.TypeContact, contact.TypePurchase, contact.TypeComplaint, contact.TypeOptOut, contact.TypeOptIn} {
		if types[typ] == 0 {
			t.Errorf("no %s among 5000 events", typ)
		}
	}
	if offers == 0 {
		t.Error("no offer among 5000 events")
	}
}

func TestSameSeedSameEvents(t *testing.T) {
	a := eventgen.New(7, 10, "x-", now, time.Hour).Batch(50)
	b := eventgen.New(7, 10, "x-", now, time.Hour).Batch(50)
	if !reflect.DeepEqual(a, b) {
		t.Error("two generators of one seed made different events")
	}
}
