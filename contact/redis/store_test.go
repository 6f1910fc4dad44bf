package redis_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/internal/contacttest"
	"github.com/outreach/outreach/internal/testenv"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func newStore(tb testing.TB, o redis.Options) (*redis.Store, *testenv.Redis) {
	tb.Helper()
	r := testenv.NewRedis(tb)
	o.Prefix = r.Prefix
	if o.Now == nil {
		o.Now = func() time.Time { return t0 }
	}
	return redis.New(r.Client, o), r
}

func ev(id, typ, customer string, at time.Time, mod ...func(*contact.Event)) contact.Event {
	e := contact.Event{ID: id, Type: contact.Type(typ), CustomerID: customer, At: at}
	if e.Type == contact.TypeContact {
		e.Channel = contact.Call
	}
	if e.Type == contact.TypePurchase {
		e.Product = "fiber-500"
	}
	if e.Type == contact.TypeComplaint {
		e.CaseID = "case-1"
	}
	for _, m := range mod {
		m(&e)
	}
	if err := e.Normalize(contact.Defaults{}); err != nil {
		panic(err)
	}
	return e
}

func eur(units int64) *contact.Money { return &contact.Money{Minor: units * 100, Currency: "EUR"} }

func apply(tb testing.TB, s *redis.Store, events ...contact.Event) {
	tb.Helper()
	errs, err := s.Apply(context.Background(), events)
	if err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("Apply refused event %d: %v", i, err)
		}
	}
}

func timeline(tb testing.TB, s *redis.Store, customer string, limit int) ([]contact.Event, contact.State) {
	tb.Helper()
	events, state, err := s.Timeline(context.Background(), customer, contact.Page{Limit: limit})
	if err != nil {
		tb.Fatalf("Timeline: %v", err)
	}
	return events, state
}

func ids(events []contact.Event) string {
	s := ""
	for i, e := range events {
		if i > 0 {
			s += ","
		}
		s += e.ID
	}
	return s
}

func TestApplyTwiceStoresOnce(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{})
	e := ev("e1", "contact", "c1", t0.Add(-time.Hour), func(e *contact.Event) {
		e.Product = "fiber-500"
		e.Offer = &contact.Offer{ID: "o1", Price: eur(49)}
	})
	apply(t, s, e)
	apply(t, s, e, e)
	// Redelivered JSON decodes to the same event.
	raw := []byte(`{"id":"e1","type":"contact","customer_id":"c1","at":"2026-11-20T10:00:00+01:00","channel":"call","product":"fiber-500","offer":{"id":"o1","price":49.00},"extra":"ignored"}`)
	again, err := contact.Decode(raw, contact.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, again)

	for _, kind := range []string{"h", "f", "r"} {
		n, err := r.Client.ZCard(context.Background(), r.Prefix+"{c:c1}:"+kind).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("key %s holds %d members, want 1", kind, n)
		}
	}
	events, _ := timeline(t, s, "c1", 50)
	if got := ids(events); got != "e1" {
		t.Errorf("timeline = %s, want e1", got)
	}
}

func TestTimelineOrderedWhateverTheArrival(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s, ev("e3", "contact", "c1", t0.Add(-1*time.Hour)))
	apply(t, s, ev("e1", "purchase", "c1", t0.Add(-3*time.Hour)))
	apply(t, s, ev("e4", "opt_out", "c1", t0.Add(-30*time.Minute)), ev("e2", "complaint", "c1", t0.Add(-2*time.Hour)))
	events, _ := timeline(t, s, "c1", 50)
	if got, want := ids(events), "e4,e3,e2,e1"; got != want {
		t.Errorf("timeline = %s, want %s", got, want)
	}
	events, _ = timeline(t, s, "c1", 2)
	if got, want := ids(events), "e4,e3"; got != want {
		t.Errorf("timeline limit 2 = %s, want %s", got, want)
	}
	page, _, err := s.Timeline(context.Background(), "c1", contact.Page{Limit: 2, After: contact.CursorOf(&events[1])})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(page), "e2,e1"; got != want {
		t.Errorf("second page = %s, want %s", got, want)
	}
}

func TestUnknownCustomerIsEmpty(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	events, state := timeline(t, s, "nobody", 50)
	if len(events) != 0 || !state.Empty() {
		t.Errorf("unknown customer: events %v state %+v, want empty", events, state)
	}
}

func TestCustomersAreSeparate(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s, ev("a1", "contact", "a", t0.Add(-time.Hour)), ev("b1", "contact", "b", t0.Add(-time.Hour)))
	events, _ := timeline(t, s, "a", 50)
	if got := ids(events); got != "a1" {
		t.Errorf("timeline of a = %s, want a1", got)
	}
}

func TestRetentionByCount(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{MaxEvents: 5})
	var batch []contact.Event
	for i := range 12 {
		batch = append(batch, ev(fmt.Sprintf("e%02d", i), "contact", "c1", t0.Add(-time.Duration(12-i)*time.Minute)))
	}
	apply(t, s, batch...)
	n, _ := r.Client.ZCard(context.Background(), r.Prefix+"{c:c1}:h").Result()
	if n != 5 {
		t.Errorf("kept %d contacts, want 5", n)
	}
	events, _ := timeline(t, s, "c1", 50)
	if got, want := ids(events), "e11,e10,e09,e08,e07"; got != want {
		t.Errorf("timeline = %s, want the newest five %s", got, want)
	}
}

func TestRetentionByAgeKeepsBindingFacts(t *testing.T) {
	t.Parallel()
	s, r := newStore(t, redis.Options{Retention: 24 * time.Hour})
	apply(t, s,
		ev("old", "contact", "c1", t0.Add(-48*time.Hour)),
		ev("new", "contact", "c1", t0.Add(-time.Hour)),
		ev("oldopt", "opt_out", "c1", t0.Add(-72*time.Hour)),
		ev("oldcase", "complaint", "c1", t0.Add(-420*24*time.Hour)),
	)
	events, state := timeline(t, s, "c1", 50)
	if got, want := ids(events), "new"; got != want {
		t.Errorf("timeline = %s, want %s (older entries trimmed from the history)", got, want)
	}
	if _, ok := state.OptOutInForce(contact.Call); !ok {
		t.Errorf("opt-out older than retention no longer in force: %+v", state.Consent)
	}
	if got := ids(state.OpenComplaints()); got != "oldcase" {
		t.Errorf("open complaints = %q, want the 420-day-old case", got)
	}
	ctx := context.Background()
	ttl, _ := r.Client.PTTL(ctx, r.Prefix+"{c:c1}:h").Result()
	if ttl <= 23*time.Hour || ttl > 24*time.Hour {
		t.Errorf("history TTL = %v, want about 24h", ttl)
	}
	if ttl, _ := r.Client.PTTL(ctx, r.Prefix+"{c:c1}:s").Result(); ttl >= 0 {
		t.Errorf("state with binding facts has TTL %v, want none", ttl)
	}
	// Once the case is resolved and the customer opts in, nothing binds:
	// the state expires like the history.
	apply(t, s, ev("fix", "complaint", "c1", t0.Add(-time.Minute), func(e *contact.Event) { e.CaseID = "case-1"; e.Status = "resolved" }),
		ev("in", "opt_in", "c1", t0.Add(-time.Minute)))
	if ttl, _ := r.Client.PTTL(ctx, r.Prefix+"{c:c1}:s").Result(); ttl <= 23*time.Hour {
		t.Errorf("state without binding facts has TTL %v, want about 24h", ttl)
	}
}

func TestStateFromTheStore(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	apply(t, s,
		ev("p1", "purchase", "c1", t0.Add(-100*time.Hour), func(e *contact.Event) { e.Price = eur(39) }),
		ev("x1", "complaint", "c1", t0.Add(-50*time.Hour), func(e *contact.Event) { e.Owner = "b.smith" }),
		ev("x2", "complaint", "c1", t0.Add(-40*time.Hour), func(e *contact.Event) { e.CaseID = "case-2" }),
		ev("x3", "complaint", "c1", t0.Add(-30*time.Hour), func(e *contact.Event) { e.CaseID = "case-2"; e.Status = "resolved" }),
		ev("o1", "opt_out", "c1", t0.Add(-20*time.Hour), func(e *contact.Event) { e.Channel = contact.Call }),
		ev("k1", "contact", "c1", t0.Add(-10*time.Hour), func(e *contact.Event) {
			e.Agent = "a.jones"
			e.Product = "fiber-500"
			e.Offer = &contact.Offer{Price: eur(39)}
		}),
		ev("k2", "contact", "c1", t0.Add(-5*time.Hour), func(e *contact.Event) { e.Channel = contact.Email }),
		ev("k3", "contact", "c1", t0.Add(-1*time.Hour), func(e *contact.Event) { e.Direction = contact.Inbound }),
		ev("z1", "profile", "c1", t0.Add(-1*time.Hour), func(e *contact.Event) { e.Timezone = "Europe/Oslo"; e.Phones = []string{"+4791555501"} }),
	)
	_, st := timeline(t, s, "c1", 50)
	if got := st.Purchases["fiber-500"]; got.ID != "p1" || *got.Price != *eur(39) {
		t.Errorf("purchases[fiber-500] = %+v, want p1 at 39 EUR", got)
	}
	if got := ids(st.OpenComplaints()); got != "x1" || st.OpenComplaints()[0].Owner != "b.smith" {
		t.Errorf("open complaints = %s, want x1", got)
	}
	if got, _ := st.OptOutInForce(contact.Call); got.ID != "o1" {
		t.Errorf("opt-out for call = %q, want o1", got.ID)
	}
	if _, ok := st.OptOutInForce(contact.Email); ok {
		t.Errorf("email opted out, want only call")
	}
	if got := ids(st.Offers); got != "k1" || *st.Offers[0].Offer.Price != *eur(39) || !st.Offers[0].At.Equal(t0.Add(-10*time.Hour)) {
		t.Errorf("offers = %+v, want k1", st.Offers)
	}
	if got := st.LastContacts[contact.Call]; got.ID != "k1" || got.Agent != "a.jones" {
		t.Errorf("last call = %+v, want k1 (k3 is inbound)", got)
	}
	if got := st.LastContacts[contact.Email].ID; got != "k2" {
		t.Errorf("last email = %q, want k2", got)
	}
	if len(st.Recent) != 2 || st.Recent[0].ID != "k2" || st.Recent[1].ID != "k1" {
		t.Errorf("recent outbound contacts = %+v, want k2, k1", st.Recent)
	}
	if p := st.Profile; p == nil || p.Timezone != "Europe/Oslo" || len(p.Phones) != 1 {
		t.Errorf("profile = %+v", p)
	}
}

func TestFactsReadOnlyTheOffersAskedFor(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	offer := func(product string, price int64) func(*contact.Event) {
		return func(e *contact.Event) {
			e.Agent, e.Team, e.Campaign, e.Purpose = "a.jones", "retention", "autumn", "sales"
			e.Product, e.Offer = product, &contact.Offer{ID: "o-" + product, Price: eur(price)}
		}
	}
	apply(t, s,
		ev("k1", "contact", "c1", t0.Add(-3*time.Hour), offer("fiber-500", 39)),
		ev("k2", "contact", "c1", t0.Add(-2*time.Hour), offer("tv-basic", 9)),
		ev("k3", "contact", "c1", t0.Add(-1*time.Hour), offer("fiber-500", 35)),
		ev("k4", "contact", "c1", t0.Add(-1*time.Hour), offer("", 5)),
	)
	for _, tt := range []struct {
		name     string
		products []string
		want     string
	}{
		{"all", nil, "k3,k2,k1"}, // k4 names no product: not an offer the state keeps
		{"one product", []string{"fiber-500"}, "k3,k1"},
		{"none", []string{}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := s.Facts(context.Background(), []contact.Lookup{{CustomerID: "c1", OfferProducts: tt.products}})
			if f[0].Err != nil {
				t.Fatal(f[0].Err)
			}
			if got := ids(f[0].State.Offers); got != tt.want {
				t.Errorf("offers %s, want %s", got, tt.want)
			}
			for _, o := range f[0].State.Offers {
				if o.Offer == nil || o.Agent != "a.jones" || o.Campaign != "autumn" {
					t.Errorf("offer %s decoded as %+v", o.ID, o)
				}
			}
		})
	}
}

// TestPagingKeepsTies: five events of one instant, paged by two, are all
// shown, once each.
func TestPagingKeepsTies(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	var batch []contact.Event
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		batch = append(batch, ev(id, "contact", "c1", t0.Add(-time.Hour)))
	}
	batch = append(batch, ev("older", "contact", "c1", t0.Add(-2*time.Hour)), ev("newer", "contact", "c1", t0.Add(-time.Minute)))
	apply(t, s, batch...)
	var all []contact.Event
	page := contact.Page{Limit: 2}
	for range 10 {
		events, _, err := s.Timeline(context.Background(), "c1", page)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, events...)
		if len(events) < page.Limit {
			break
		}
		// The cursor travels as the client sees it.
		cur, err := contact.ParseCursor("before", contact.CursorOf(&events[len(events)-1]).String())
		if err != nil {
			t.Fatal(err)
		}
		page.After = cur
	}
	if got, want := ids(all), "newer,e,d,c,b,a,older"; got != want {
		t.Errorf("pages = %s, want %s", got, want)
	}
}

// TestReusedIDIsAConflict: an event whose id is stored with other content is
// refused and the first version stands; an identical redelivery is not.
func TestReusedIDIsAConflict(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, redis.Options{})
	first := ev("e1", "contact", "c1", t0.Add(-time.Hour), func(e *contact.Event) { e.Channel = contact.Email })
	apply(t, s, first)
	other := ev("e1", "contact", "c1", t0.Add(-time.Hour), func(e *contact.Event) { e.Channel = contact.Call })
	errs, err := s.Apply(context.Background(), []contact.Event{first, other, first})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[2] != nil || contact.ErrorCode(errs[1]) != contact.EConflict {
		t.Fatalf("Apply = %v, want only the second refused as a conflict", errs)
	}
	if n := s.Redelivered(); n != 2 {
		t.Errorf("Redelivered = %d, want 2: the first event came twice again", n)
	}
	events, st := timeline(t, s, "c1", 50)
	if len(events) != 1 || events[0].Channel != contact.Email {
		t.Errorf("timeline = %+v, want the first version only", events)
	}
	if _, ok := st.LastContacts[contact.Call]; ok {
		t.Error("the refused call reached the state")
	}
}

// TestStoreMatchesTheModel: the store's scripts merge events into the same
// state as contact.State.Apply, whatever the order and the redeliveries.
func TestStoreMatchesTheModel(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		events := contacttest.GenHistory(rt)
		if len(events) == 0 {
			return
		}
		order := rapid.Permutation(events).Draw(rt, "order")
		order = append(order, rapid.SliceOfN(rapid.SampledFrom(append(events, events[0])), 0, 5).Draw(rt, "again")...)
		s := redis.New(r.Client, redis.Options{Prefix: fmt.Sprintf("%sm%d:", r.Prefix, n), Now: func() time.Time { return contacttest.T0 }})
		var want contact.State
		for i := range events {
			want.Apply(&events[i], contacttest.T0, contact.Limits{})
		}
		for _, e := range order {
			if _, err := s.Apply(context.Background(), []contact.Event{e}); err != nil {
				rt.Fatal(err)
			}
		}
		_, got, err := s.Timeline(context.Background(), "c1", contact.Page{Limit: 1})
		if err != nil {
			rt.Fatal(err)
		}
		if g, w := contacttest.Describe(got), contacttest.Describe(want); g != w {
			rt.Fatalf("store state differs from the model:\n got %s\nwant %s", g, w)
		}
	})
}

func TestRedisDownIsUnavailable(t *testing.T) {
	t.Parallel()
	r := testenv.NewRedis(t)
	if r.Real() {
		t.Skip("stops the server; miniredis only (the consumer suite covers outages against real Redis through a proxy)")
	}
	s := redis.New(r.Client, redis.Options{Prefix: r.Prefix})
	r.Mini.Close()
	ctx := context.Background()
	_, applyErr := s.Apply(ctx, []contact.Event{ev("e1", "contact", "c1", t0)})
	for name, err := range map[string]error{
		"apply":    applyErr,
		"timeline": func() error { _, _, err := s.Timeline(ctx, "c1", contact.Page{Limit: 5}); return err }(),
		"ping":     s.Ping(ctx),
	} {
		var e *contact.Error
		if !errors.As(err, &e) || e.Code != contact.EUnavailable {
			t.Errorf("%s with Redis down: %v, want an %s error", name, err, contact.EUnavailable)
		}
	}
}
