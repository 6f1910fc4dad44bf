package dedupe_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// TestDecideEvidence checks every reason code with its message and evidence,
// in full.
func TestDecideEvidence(t *testing.T) {
	berlinNight := time.Date(2026, 4, 10, 21, 30, 0, 0, time.UTC) // 23:30 CEST
	tests := []struct {
		name  string
		req   dedupe.Request
		facts contact.Facts
		want  dedupe.Reason
	}{{
		name: "recent_contact",
		facts: state(outbound("e1", contact.Call, before(2*time.Hour), func(e *contact.Event) { e.Campaign = "spring" }),
			outbound("e0", contact.Call, before(5*time.Hour))),
		want: dedupe.Reason{Code: "recent_contact", Message: "called by a.jones (retention) 2h ago, outcome voicemail",
			EventID: "e1", At: timePtr(before(2 * time.Hour)), Agent: "a.jones", Team: "retention",
			Channel: contact.Call, Campaign: "spring", ExpiresAt: timePtr(now.Add(70 * time.Hour))},
	}, {
		name: "frequency_cap",
		facts: state(outbound("e1", contact.Call, before(4*day)),
			outbound("e2", contact.SMS, before(2*day)),
			outbound("e3", contact.Email, before(30*time.Hour), func(e *contact.Event) {
				e.Agent, e.Team, e.Outcome = "c.wu", "", "delivered"
			}),
			outbound("e4", contact.Visit, before(8*day))),
		want: dedupe.Reason{Code: "frequency_cap",
			Message: "3 outbound contacts in the last 7d, the limit is 3; the latest: emailed by c.wu 30h ago, outcome delivered",
			EventID: "e3", At: timePtr(before(30 * time.Hour)), Agent: "c.wu", Channel: contact.Email,
			ExpiresAt: timePtr(now.Add(3 * day)), Count: 3},
	}, {
		name: "already_purchased",
		req:  dedupe.Request{Product: "broadband-500"},
		facts: state(purchase("p1", "broadband-500", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)),
			purchase("p0", "tv-basic", before(time.Hour))),
		want: dedupe.Reason{Code: "already_purchased", Message: "bought broadband-500 on 2026-03-02 (order 991)",
			EventID: "p1", At: timePtr(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)), Channel: contact.Call,
			Product: "broadband-500", ExpiresAt: timePtr(time.Date(2027, 3, 2, 10, 0, 0, 0, time.UTC))},
	}, {
		name: "better_offer",
		req:  dedupe.Request{Product: "broadband-500", Offer: &contact.Offer{Price: eur(45)}},
		facts: state(offer("o1", contact.Mail, before(6*day), "broadband-500", 39, timePtr(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))),
			offer("o2", contact.Email, before(2*day), "broadband-500", 42, nil)),
		want: dedupe.Reason{Code: "better_offer", Message: "offered broadband-500 at 39.00 EUR by mail 6d ago, valid until 2026-12-01",
			EventID: "o1", At: timePtr(before(6 * day)), Agent: "a.jones", Team: "retention", Channel: contact.Mail,
			Product:   "broadband-500",
			Offer:     &contact.Offer{ID: "of-o1", Price: eur(39), ExpiresAt: timePtr(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))},
			ExpiresAt: timePtr(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))},
	}, {
		name:  "open_complaint",
		facts: state(complaint("k1", "77", contact.ComplaintOpened, before(3*day))),
		want: dedupe.Reason{Code: "open_complaint", Message: "open complaint 77 (owner b.smith) since 3d ago",
			EventID: "k1", At: timePtr(before(3 * day)), CaseID: "77", Owner: "b.smith"},
	}, {
		name:  "open_complaint warning for service",
		req:   dedupe.Request{Purpose: "service"},
		facts: state(complaint("k1", "77", contact.ComplaintOpened, before(45*time.Minute))),
		want: dedupe.Reason{Code: "open_complaint", Message: "open complaint 77 (owner b.smith) since 45m ago", Warning: true,
			EventID: "k1", At: timePtr(before(45 * time.Minute)), CaseID: "77", Owner: "b.smith"},
	}, {
		name:  "opted_out",
		facts: state(opt("x1", contact.TypeOptOut, contact.Call, time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC))),
		want: dedupe.Reason{Code: "opted_out", Message: `opted out of call on 2026-01-10: "stop calling"`,
			EventID: "x1", At: timePtr(time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)), Channel: contact.Call},
	}, {
		name: "do_not_call",
		facts: contact.Facts{Suppressions: []dedupe.Suppression{{List: "national-dnc", Reason: "registered with the regulator",
			CustomerID: "c1", ExpiresAt: timePtr(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))}}},
		want: dedupe.Reason{Code: "do_not_call", Message: `on do-not-call list national-dnc until 2027-01-01: "registered with the regulator"`,
			List: "national-dnc", ExpiresAt: timePtr(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))},
	}, {
		name:  "claimed",
		req:   dedupe.Request{Agent: "dialer-3"},
		facts: contact.Facts{Claim: &dedupe.Claim{Token: "t", Agent: "dialer-7", Campaign: "spring", ExpiresAt: now.Add(5 * time.Minute)}},
		want: dedupe.Reason{Code: "claimed", Message: "claimed by dialer-7 (campaign spring) until 12:05 UTC",
			Agent: "dialer-7", Campaign: "spring", ExpiresAt: timePtr(now.Add(5 * time.Minute))},
	}, {
		name: "quiet_hours",
		req:  dedupe.Request{Timezone: "Europe/Berlin", At: berlinNight},
		want: dedupe.Reason{Code: "quiet_hours", Message: "it is 23:30 for the customer (Europe/Berlin, from the check), inside quiet hours 21:00–08:00",
			Timezone: "Europe/Berlin", ExpiresAt: timePtr(time.Date(2026, 4, 11, 6, 0, 0, 0, time.UTC))},
	}, {
		name:  "quiet_hours from the profile",
		req:   dedupe.Request{At: berlinNight},
		facts: state(profile("Europe/Berlin")),
		want: dedupe.Reason{Code: "quiet_hours", Message: "it is 23:30 for the customer (Europe/Berlin, from the customer's profile), inside quiet hours 21:00–08:00",
			Timezone: "Europe/Berlin", ExpiresAt: timePtr(time.Date(2026, 4, 11, 6, 0, 0, 0, time.UTC))},
	}, {
		name: "quiet_hours from the number called",
		req:  dedupe.Request{At: berlinNight, Phone: "+4930901820"},
		want: dedupe.Reason{Code: "quiet_hours", Message: "it is 23:30 for the customer (Europe/Berlin, from the number called), inside quiet hours 21:00–08:00",
			Timezone: "Europe/Berlin", ExpiresAt: timePtr(time.Date(2026, 4, 11, 6, 0, 0, 0, time.UTC))},
	}, {
		name:  "quiet_hours from the profile's phone",
		req:   dedupe.Request{At: berlinNight},
		facts: state(profilePhones("+4930901820")),
		want: dedupe.Reason{Code: "quiet_hours", Message: "it is 23:30 for the customer (Europe/Berlin, from the customer's phone number), inside quiet hours 21:00–08:00",
			Timezone: "Europe/Berlin", ExpiresAt: timePtr(time.Date(2026, 4, 11, 6, 0, 0, 0, time.UTC))},
	}, {
		name:  "quiet_hours unknown profile zone",
		facts: contact.Facts{State: contact.State{Profile: &contact.Event{ID: "z", Type: contact.TypeProfile, Timezone: "Mars/Olympus"}}},
		want: dedupe.Reason{Code: "quiet_hours", Warning: true, Timezone: "Mars/Olympus",
			Message: `the customer's time zone "Mars/Olympus" is unknown here, so quiet hours were not checked`},
	}}
	p := dedupe.DefaultPolicy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.CustomerID, req.Channel = "c1", contact.Call
			if err := req.Normalize(now, contact.Defaults{}); err != nil {
				t.Fatal(err)
			}
			d := dedupe.Decide(p, &req, &tt.facts, now)
			if len(d.Reasons) != 1 {
				t.Fatalf("got %d reasons, want 1: %s", len(d.Reasons), toJSON(t, d))
			}
			if got, want := toJSON(t, d.Reasons[0]), toJSON(t, tt.want); got != want {
				t.Errorf("reason\n got %s\nwant %s", got, want)
			}
			if got, want := d.Allowed, tt.want.Warning; got != want {
				t.Errorf("Allowed = %v, want %v", got, want)
			}
		})
	}
}

// codes lists the reasons of d as "code" for blocking ones and "~code" for
// warnings, comma-separated.
func codes(d dedupe.Decision) string {
	var s []string
	for _, r := range d.Reasons {
		if r.Warning {
			s = append(s, "~"+r.Code)
		} else {
			s = append(s, r.Code)
		}
	}
	return strings.Join(s, ",")
}

func TestDecideRules(t *testing.T) {
	def := dedupe.DefaultPolicy()
	overrides := mustParse(t, `
channels:
  call: {cooldown: 12h}
  email: {quiet_hours: {}}
campaigns:
  quick:
    cooldowns: {call: 1h}
  slow:
    cooldowns: {call: 48h}
    frequency_cap: {max: 5}
    quiet_hours: {start: "18:00", end: "10:00"}
    exempt: {sales: [better_offer], recovery: []}
`)
	cheap := offer("o1", contact.Email, before(2*day), "tv", 10, nil)
	dear := offer("o2", contact.Email, before(2*day), "tv", 30, nil)
	offered := func(price int64) dedupe.Request {
		return dedupe.Request{Product: "tv", Offer: &contact.Offer{Price: eur(price)}}
	}
	three := []contact.Event{
		outbound("e1", contact.Email, before(2*day)),
		outbound("e2", contact.SMS, before(3*day)),
		outbound("e3", contact.Call, before(6*day)),
	}
	contacts, opts, complaints := state, state, state
	night := time.Date(2026, 4, 10, 22, 30, 0, 0, time.UTC) // 00:30 in Berlin, 18:30 in New York

	tests := []struct {
		name   string
		policy *dedupe.Policy // nil: the default
		req    dedupe.Request // customer c1 by call unless set
		facts  contact.Facts
		want   string // see codes
		nil    bool   // pass nil Facts
	}{
		{name: "nothing known", want: ""},
		{name: "nil facts", nil: true},

		{name: "recent_contact/blocked", facts: contacts(outbound("e1", contact.Call, before(71*time.Hour))), want: "recent_contact"},
		{name: "recent_contact/just outside cooldown", facts: contacts(outbound("e1", contact.Call, before(72*time.Hour)))},
		{name: "recent_contact/other channel", facts: contacts(outbound("e1", contact.SMS, before(time.Hour)))},
		{name: "recent_contact/inbound", facts: contacts(outbound("e1", contact.Call, before(time.Hour), inbound))},
		// A contact stamped a little after now counts as made now.
		{name: "recent_contact/stamped after now", facts: contacts(outbound("e1", contact.Call, now.Add(time.Minute))), want: "recent_contact"},
		// A planned check sees every contact recorded up to now.
		{name: "recent_contact/planned within the cooldown", req: dedupe.Request{At: now.Add(2 * day)},
			facts: contacts(outbound("e1", contact.Call, before(time.Hour))), want: "recent_contact"},
		{name: "recent_contact/planned after the cooldown", req: dedupe.Request{At: now.Add(3 * day)},
			facts: contacts(outbound("e1", contact.Call, before(time.Hour)))},
		{name: "recent_contact/chat has no cooldown", req: dedupe.Request{Channel: contact.Chat},
			facts: contacts(outbound("e1", contact.Chat, before(time.Minute)))},
		{name: "recent_contact/mail 6d", req: dedupe.Request{Channel: contact.Mail},
			facts: contacts(outbound("e1", contact.Mail, before(6*day))), want: "recent_contact"},

		{name: "frequency_cap/blocked", facts: contacts(three...), want: "frequency_cap"},
		{name: "frequency_cap/two in window", facts: contacts(three[:2]...)},
		{name: "frequency_cap/one out of window",
			facts: contacts(three[0], three[1], outbound("e3", contact.Call, before(7*day)))},
		{name: "frequency_cap/inbound does not count",
			facts: contacts(three[0], three[1], outbound("e3", contact.Call, before(4*day), inbound))},
		{name: "frequency_cap/with recent_contact",
			facts: contacts(three[0], three[1], outbound("e3", contact.Call, before(time.Hour))), want: "recent_contact,frequency_cap"},

		{name: "already_purchased/within lookback", req: dedupe.Request{Product: "tv"},
			facts: state(purchase("p1", "tv", before(364*day))), want: "already_purchased"},
		{name: "already_purchased/outside lookback", req: dedupe.Request{Product: "tv"},
			facts: state(purchase("p1", "tv", before(366*day)))},
		{name: "already_purchased/other product", req: dedupe.Request{Product: "tv"},
			facts: state(purchase("p1", "radio", before(day)))},
		{name: "already_purchased/no product asked",
			facts: state(purchase("p1", "tv", before(day)))},
		{name: "already_purchased/stamped after now counts", req: dedupe.Request{Product: "tv"},
			facts: state(purchase("p1", "tv", now.Add(time.Hour))), want: "already_purchased"},

		{name: "better_offer/cheaper", req: offered(20), facts: state(cheap, dear), want: "better_offer"},
		{name: "better_offer/dearer", req: offered(20), facts: state(dear)},
		{name: "better_offer/same price", req: offered(10), facts: state(cheap)},
		{name: "better_offer/no price asked", req: dedupe.Request{Product: "tv", Offer: &contact.Offer{ID: "x"}},
			facts: state(cheap)},
		{name: "better_offer/no offer asked", req: dedupe.Request{Product: "tv"},
			facts: state(cheap)},
		{name: "better_offer/other product", req: offered(20),
			facts: state(offer("o1", contact.Email, before(day), "radio", 1, nil))},
		{name: "better_offer/expired explicitly", req: offered(20),
			facts: state(offer("o1", contact.Email, before(day), "tv", 1, timePtr(before(time.Minute))))},
		{name: "better_offer/explicit expiry beyond default validity", req: offered(20),
			facts: state(offer("o1", contact.Email, before(90*day), "tv", 1, timePtr(now.Add(day)))), want: "better_offer"},
		{name: "better_offer/default validity over", req: offered(20),
			facts: state(offer("o1", contact.Email, before(30*day), "tv", 1, nil))},
		{name: "better_offer/default validity not over", req: offered(20),
			facts: state(offer("o1", contact.Email, before(29*day), "tv", 1, nil)), want: "better_offer"},
		{name: "better_offer/other currency", req: dedupe.Request{Product: "tv", Offer: &contact.Offer{Price: &contact.Money{Minor: 2000, Currency: "GBP"}}},
			facts: state(cheap)},
		{name: "better_offer/planned after it expires", req: func() dedupe.Request { r := offered(20); r.At = now.Add(29 * day); return r }(),
			facts: state(cheap)},

		{name: "open_complaint/sales", facts: complaints(complaint("k1", "77", "opened", before(day))), want: "open_complaint"},
		{name: "open_complaint/survey", req: dedupe.Request{Purpose: "survey"}, facts: complaints(complaint("k1", "77", "opened", before(day))), want: "open_complaint"},
		{name: "open_complaint/collections", req: dedupe.Request{Purpose: "collections"}, facts: complaints(complaint("k1", "77", "opened", before(day))), want: "open_complaint"},
		{name: "open_complaint/service warns", req: dedupe.Request{Purpose: "service"}, facts: complaints(complaint("k1", "77", "opened", before(day))), want: "~open_complaint"},
		{name: "open_complaint/recovery warns", req: dedupe.Request{Purpose: "recovery"}, facts: complaints(complaint("k1", "77", "opened", before(day))), want: "~open_complaint"},
		{name: "open_complaint/info warns", req: dedupe.Request{Purpose: "info"}, facts: complaints(complaint("k1", "77", "opened", before(day))), want: "~open_complaint"},
		{name: "open_complaint/resolved",
			facts: complaints(complaint("k1", "77", "opened", before(3*day)), complaint("k2", "77", "resolved", before(day)))},
		{name: "open_complaint/resolved, stamped after now",
			facts: complaints(complaint("k1", "77", "opened", before(3*day)), complaint("k2", "77", "resolved", now.Add(time.Minute)))},
		{name: "open_complaint/opened long ago", facts: complaints(complaint("k1", "77", "opened", before(420*day))), want: "open_complaint"},
		{name: "open_complaint/two cases, one resolved",
			facts: complaints(complaint("k1", "77", "opened", before(3*day)), complaint("k2", "77", "resolved", before(day)),
				complaint("k3", "78", "opened", before(2*day))), want: "open_complaint"},
		{name: "open_complaint/two open", facts: complaints(complaint("k1", "77", "opened", before(3*day)), complaint("k3", "78", "opened", before(2*day))),
			want: "open_complaint,open_complaint"},

		{name: "opted_out/call", facts: opts(opt("x1", contact.TypeOptOut, contact.Call, before(day))), want: "opted_out"},
		{name: "opted_out/call only, email allowed", req: dedupe.Request{Channel: contact.Email},
			facts: opts(opt("x1", contact.TypeOptOut, contact.Call, before(day)))},
		{name: "opted_out/all channels blocks email", req: dedupe.Request{Channel: contact.Email},
			facts: opts(opt("x1", contact.TypeOptOut, "", before(day))), want: "opted_out"},
		{name: "opted_out/then opted in", facts: opts(opt("x1", contact.TypeOptOut, contact.Call, before(3*day)), opt("x2", contact.TypeOptIn, contact.Call, before(day)))},
		{name: "opted_out/opted out, stamped after now",
			facts: opts(opt("x1", contact.TypeOptIn, contact.Call, before(3*day)), opt("x2", contact.TypeOptOut, contact.Call, now.Add(time.Minute))), want: "opted_out"},
		{name: "opted_out/a planned check does not dodge an opt-out", req: dedupe.Request{At: now.Add(30 * day)},
			facts: opts(opt("x1", contact.TypeOptOut, contact.Call, before(time.Hour))), want: "opted_out"},
		{name: "opted_out/same instant: out wins",
			facts: opts(opt("x1", contact.TypeOptIn, contact.Call, before(time.Hour)), opt("x2", contact.TypeOptOut, contact.Call, before(time.Hour))), want: "opted_out"},
		{name: "opted_out/opted in, then out", facts: opts(opt("x1", contact.TypeOptIn, contact.Call, before(3*day)), opt("x2", contact.TypeOptOut, contact.Call, before(day))), want: "opted_out"},
		{name: "opted_out/all, then in on call", facts: opts(opt("x1", contact.TypeOptOut, "", before(3*day)), opt("x2", contact.TypeOptIn, contact.Call, before(day)))},
		{name: "opted_out/all, then in on call, email still out", req: dedupe.Request{Channel: contact.Email},
			facts: opts(opt("x1", contact.TypeOptOut, "", before(3*day)), opt("x2", contact.TypeOptIn, contact.Call, before(day))), want: "opted_out"},

		{name: "do_not_call/listed", facts: contact.Facts{Suppressions: []dedupe.Suppression{{List: "national"}}}, want: "do_not_call"},
		{name: "do_not_call/listing expired", facts: contact.Facts{Suppressions: []dedupe.Suppression{{List: "national", ExpiresAt: timePtr(before(time.Second))}}}},
		{name: "do_not_call/two lists", facts: contact.Facts{Suppressions: []dedupe.Suppression{{List: "national"}, {List: "internal", ExpiresAt: timePtr(now.Add(time.Hour))}}},
			want: "do_not_call,do_not_call"},

		{name: "claimed/by another agent", req: dedupe.Request{Agent: "dialer-3"},
			facts: contact.Facts{Claim: &dedupe.Claim{Agent: "dialer-7", ExpiresAt: now.Add(time.Minute)}}, want: "claimed"},
		{name: "claimed/anonymous request", facts: contact.Facts{Claim: &dedupe.Claim{Agent: "dialer-7", ExpiresAt: now.Add(time.Minute)}}, want: "claimed"},
		{name: "claimed/expired", req: dedupe.Request{Agent: "dialer-3"},
			facts: contact.Facts{Claim: &dedupe.Claim{Agent: "dialer-7", ExpiresAt: now}}},
		{name: "claimed/by the same agent", req: dedupe.Request{Agent: "dialer-7"},
			facts: contact.Facts{Claim: &dedupe.Claim{Agent: "dialer-7", ExpiresAt: now.Add(time.Minute)}}, want: "claimed"},

		{name: "quiet_hours/after midnight in Berlin", req: dedupe.Request{Timezone: "Europe/Berlin", At: night}, want: "quiet_hours"},
		{name: "quiet_hours/before midnight in Berlin", req: dedupe.Request{Timezone: "Europe/Berlin", At: time.Date(2026, 4, 10, 19, 0, 0, 0, time.UTC)}, want: "quiet_hours"},
		{name: "quiet_hours/start is quiet", req: dedupe.Request{Timezone: "Europe/Berlin", At: time.Date(2026, 4, 10, 21, 0, 0, 0, mustZone(t, "Europe/Berlin"))}, want: "quiet_hours"},
		{name: "quiet_hours/end is allowed", req: dedupe.Request{Timezone: "Europe/Berlin", At: time.Date(2026, 4, 11, 6, 0, 0, 0, time.UTC)}},
		{name: "quiet_hours/a minute before the end", req: dedupe.Request{Timezone: "Europe/Berlin", At: time.Date(2026, 4, 11, 5, 59, 0, 0, time.UTC)}, want: "quiet_hours"},
		{name: "quiet_hours/evening in New York", req: dedupe.Request{Timezone: "America/New_York", At: night}},
		{name: "quiet_hours/no time zone known", req: dedupe.Request{At: night}},
		{name: "quiet_hours/profile time zone", req: dedupe.Request{At: night}, facts: state(profile("Europe/Berlin")), want: "quiet_hours"},
		{name: "quiet_hours/zone of the number called", req: dedupe.Request{At: night, Phone: "+4930901820"}, want: "quiet_hours"},
		{name: "quiet_hours/a number of several zones", req: dedupe.Request{At: night, Phone: "+18005550100"}},
		{name: "quiet_hours/request zone wins", req: dedupe.Request{At: night, Timezone: "America/New_York"}, facts: state(profile("Europe/Berlin"))},
		{name: "quiet_hours/ignores exemptions", req: dedupe.Request{Purpose: "service", Timezone: "Europe/Berlin", At: night}, want: "quiet_hours"},

		// Purpose exemptions of the default policy.
		{name: "exempt/recovery from recent_contact", req: dedupe.Request{Purpose: "recovery"}, facts: contacts(outbound("e1", contact.Call, before(time.Hour)))},
		{name: "exempt/service from recent_contact", req: dedupe.Request{Purpose: "service"}, facts: contacts(outbound("e1", contact.Call, before(time.Hour)))},
		{name: "exempt/not survey from recent_contact", req: dedupe.Request{Purpose: "survey"}, facts: contacts(outbound("e1", contact.Call, before(time.Hour))), want: "recent_contact"},
		{name: "exempt/recovery from frequency_cap", req: dedupe.Request{Purpose: "recovery"}, facts: contacts(three...)},
		{name: "exempt/service from frequency_cap", req: dedupe.Request{Purpose: "service"}, facts: contacts(three...)},
		{name: "exempt/not collections from frequency_cap", req: dedupe.Request{Purpose: "collections"}, facts: contacts(three...), want: "frequency_cap"},
		{name: "exempt/recovery from better_offer", req: func() dedupe.Request { r := offered(20); r.Purpose = "recovery"; return r }(),
			facts: state(cheap)},
		{name: "exempt/service from better_offer", req: func() dedupe.Request { r := offered(20); r.Purpose = "service"; return r }(),
			facts: state(cheap)},
		{name: "exempt/recovery not from already_purchased", req: dedupe.Request{Purpose: "recovery", Product: "tv"},
			facts: state(purchase("p1", "tv", before(day))), want: "already_purchased"},
		{name: "exempt/recovery not from opted_out, do_not_call, claimed", req: dedupe.Request{Purpose: "recovery"},
			facts: with(contact.Facts{Suppressions: []dedupe.Suppression{{List: "national"}}, Claim: &dedupe.Claim{Agent: "dialer-7"}},
				opt("x1", contact.TypeOptOut, "", before(day))),
			want: "opted_out,do_not_call,claimed"},

		// Overrides: campaign over channel over base.
		{name: "override/channel cooldown shorter", policy: overrides, facts: contacts(outbound("e1", contact.Call, before(13*time.Hour)))},
		{name: "override/channel cooldown still applies", policy: overrides, facts: contacts(outbound("e1", contact.Call, before(11*time.Hour))), want: "recent_contact"},
		{name: "override/campaign cooldown over channel's", policy: overrides, req: dedupe.Request{Campaign: "slow"},
			facts: contacts(outbound("e1", contact.Call, before(30*time.Hour))), want: "recent_contact"},
		{name: "override/campaign cooldown shorter", policy: overrides, req: dedupe.Request{Campaign: "quick"},
			facts: contacts(outbound("e1", contact.Call, before(2*time.Hour)))},
		{name: "override/unknown campaign uses the base", policy: overrides, req: dedupe.Request{Campaign: "nope"},
			facts: contacts(outbound("e1", contact.Call, before(2*time.Hour))), want: "recent_contact"},
		{name: "override/campaign frequency cap", policy: overrides, req: dedupe.Request{Campaign: "slow"}, facts: contacts(three...)},
		{name: "override/campaign frequency cap keeps the window", policy: overrides, req: dedupe.Request{Campaign: "slow"},
			facts: contacts(append(three, outbound("e4", contact.Mail, before(6*day)), outbound("e5", contact.Mail, before(5*day)))...), want: "frequency_cap"},
		{name: "override/channel quiet hours off for email", policy: overrides, req: dedupe.Request{Channel: contact.Email, Timezone: "Europe/Berlin", At: night}},
		{name: "override/quiet hours still on for call", policy: overrides, req: dedupe.Request{Timezone: "Europe/Berlin", At: night}, want: "quiet_hours"},
		{name: "override/campaign quiet hours over channel's", policy: overrides,
			req: dedupe.Request{Campaign: "slow", Channel: contact.Email, Timezone: "America/New_York", At: night}, want: "quiet_hours"},
		{name: "override/campaign exempts sales from better_offer", policy: overrides,
			req:   func() dedupe.Request { r := offered(20); r.Campaign = "slow"; return r }(),
			facts: state(cheap)},
		{name: "override/campaign removes recovery's exemptions", policy: overrides, req: dedupe.Request{Campaign: "slow", Purpose: "recovery"},
			facts: contacts(outbound("e1", contact.Call, before(time.Hour))), want: "recent_contact"},
		{name: "override/base keeps service's exemptions", policy: overrides, req: dedupe.Request{Campaign: "slow", Purpose: "service"},
			facts: contacts(outbound("e1", contact.Call, before(time.Hour)))},

		{name: "order/everything", req: dedupe.Request{Agent: "dialer-3", Product: "tv", Offer: &contact.Offer{Price: eur(20)}, Timezone: "Europe/Berlin", At: night},
			facts: with(contact.Facts{Suppressions: []dedupe.Suppression{{List: "national"}}, Claim: &dedupe.Claim{Agent: "dialer-7"}},
				append([]contact.Event{outbound("e0", contact.Call, night.Add(-time.Hour)), cheap, purchase("p1", "tv", before(day)),
					complaint("k1", "77", "opened", before(day)), opt("x1", contact.TypeOptOut, contact.Call, before(day))}, three...)...),
			want: "opted_out,do_not_call,claimed,open_complaint,quiet_hours,recent_contact,frequency_cap,already_purchased,better_offer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			if p == nil {
				p = def
			}
			req := tt.req
			req.CustomerID = "c1"
			if req.Channel == "" {
				req.Channel = contact.Call
			}
			if err := req.Normalize(now, contact.Defaults{}); err != nil {
				t.Fatal(err)
			}
			facts := &tt.facts
			if tt.nil {
				facts = nil
			}
			d := dedupe.Decide(p, &req, facts, now)
			if got := codes(d); got != tt.want {
				t.Errorf("reasons = %q, want %q\n%s", got, tt.want, toJSON(t, d))
			}
			wantAllowed := tt.want == "" || allWarnings(tt.want)
			if d.Allowed != wantAllowed {
				t.Errorf("Allowed = %v, want %v", d.Allowed, wantAllowed)
			}
			if d.Reasons == nil {
				t.Error("Reasons is nil, want an empty slice")
			}
			for _, r := range d.Reasons {
				if r.Message == "" {
					t.Errorf("%s: empty message", r.Code)
				}
			}
		})
	}
}

func allWarnings(codes string) bool {
	for _, c := range strings.Split(codes, ",") {
		if !strings.HasPrefix(c, "~") {
			return false
		}
	}
	return true
}

func mustZone(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// TestDecideUnnormalized checks that a request Normalize would refuse is
// not treated more leniently than a valid one.
func TestDecideUnnormalized(t *testing.T) {
	req := dedupe.Request{CustomerID: "c1", Channel: contact.Call, Purpose: "spam", At: now}
	facts := state(complaint("k1", "77", "opened", before(day)))
	if got, want := codes(dedupe.Decide(dedupe.DefaultPolicy(), &req, &facts, now)), "open_complaint"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDecisionJSON(t *testing.T) {
	req := dedupe.Request{CustomerID: "c1", Channel: contact.Call}
	if err := req.Normalize(now, contact.Defaults{}); err != nil {
		t.Fatal(err)
	}
	d := dedupe.Decide(dedupe.DefaultPolicy(), &req, nil, now)
	if got, want := toJSON(t, d), `{"allowed":true,"reasons":[]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestUnavailable(t *testing.T) {
	tests := []struct {
		name, policy string
		want         string
	}{
		{"closed", "on_unavailable: closed", `{"allowed":false,"reasons":[{"code":"unavailable","message":"the contact history could not be read, so the contact is blocked to be safe"}]}`},
		{"open", "on_unavailable: open", `{"allowed":true,"reasons":[{"code":"unavailable","message":"the contact history could not be read, so the contact was not checked","warning":true}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toJSON(t, dedupe.Unavailable(mustParse(t, tt.policy))); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRequestNormalize(t *testing.T) {
	valid := func() dedupe.Request { return dedupe.Request{CustomerID: "c1", Channel: contact.Call} }
	tests := []struct {
		name  string
		edit  func(*dedupe.Request)
		field string // "" when valid
	}{
		{"valid", func(*dedupe.Request) {}, ""},
		{"missing customer_id", func(r *dedupe.Request) { r.CustomerID = "" }, "customer_id"},
		{"long customer_id", func(r *dedupe.Request) { r.CustomerID = strings.Repeat("x", 129) }, "customer_id"},
		{"missing channel", func(r *dedupe.Request) { r.Channel = "" }, "channel"},
		{"unknown channel", func(r *dedupe.Request) { r.Channel = "fax" }, "channel"},
		{"unknown purpose", func(r *dedupe.Request) { r.Purpose = "spam" }, "purpose"},
		{"negative offer.price", func(r *dedupe.Request) { r.Offer = contact.NewOffer("", "-1", "") }, "offer.price"},
		{"zero offer.price", func(r *dedupe.Request) { r.Offer = contact.NewOffer("", "0", "") }, ""},
		{"too many decimals", func(r *dedupe.Request) { r.Offer = contact.NewOffer("", "45.123", "EUR") }, "offer.price"},
		{"bad offer.currency", func(r *dedupe.Request) { r.Offer = contact.NewOffer("", "5", "eur") }, "offer.currency"},
		{"unknown offer.currency", func(r *dedupe.Request) { r.Offer = contact.NewOffer("", "5", "ABC") }, "offer.currency"},
		{"bad phone", func(r *dedupe.Request) { r.Phone = "call me" }, "phone"},
		{"at in the past", func(r *dedupe.Request) { r.At = before(time.Hour) }, "at"},
		{"at a minute ago", func(r *dedupe.Request) { r.At = before(time.Minute) }, ""},
		{"at planned", func(r *dedupe.Request) { r.At = now.Add(30 * day) }, ""},
		{"claim at a planned time", func(r *dedupe.Request) { r.At = now.Add(30 * day); r.Claim = true }, "at"},
		{"claim now", func(r *dedupe.Request) { r.At = now.Add(time.Minute); r.Claim = true }, ""},
		{"bad timezone", func(r *dedupe.Request) { r.Timezone = "Mars/Olympus" }, "timezone"},
		{"Local timezone", func(r *dedupe.Request) { r.Timezone = "Local" }, "timezone"},
		{"path as timezone", func(r *dedupe.Request) { r.Timezone = "../../etc/passwd" }, "timezone"},
		{"good timezone", func(r *dedupe.Request) { r.Timezone = "Asia/Kolkata" }, ""},
		{"control character in agent", func(r *dedupe.Request) { r.Agent = "a\nb" }, "agent"},
		{"long campaign", func(r *dedupe.Request) { r.Campaign = strings.Repeat("c", 257) }, "campaign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.edit(&r)
			err := r.Normalize(now, contact.Defaults{})
			if tt.field == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			var ce *contact.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *contact.Error", err)
			}
			if ce.Code != contact.EInvalid || ce.Field != tt.field {
				t.Errorf("got code %q field %q (%v), want %q %q", ce.Code, ce.Field, err, contact.EInvalid, tt.field)
			}
		})
	}
}

func TestRequestNormalizeDefaults(t *testing.T) {
	r := dedupe.Request{CustomerID: "c1", Channel: contact.SMS, Phone: "915 55 501", Offer: contact.NewOffer("", "45", "")}
	if err := r.Normalize(now, contact.Defaults{Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	if r.Purpose != "sales" || !r.At.Equal(now) || r.Phone != "+4791555501" || *r.Offer.Price != (contact.Money{Minor: 4500, Currency: "NOK"}) {
		t.Errorf("got %+v, want purpose sales, at now, an E.164 phone and a price in NOK", r)
	}
	// An at within the clock skew of now is now; a later one is a plan.
	r = dedupe.Request{CustomerID: "c1", Channel: contact.SMS, At: now.Add(time.Minute)}
	if err := r.Normalize(now, contact.Defaults{}); err != nil || !r.At.Equal(now) || r.Planned(now) {
		t.Errorf("at a minute ahead: %v, at %v", err, r.At)
	}
	plan := now.Add(day)
	r = dedupe.Request{CustomerID: "c1", Channel: contact.SMS, At: plan}
	if err := r.Normalize(now, contact.Defaults{}); err != nil || !r.At.Equal(plan) || !r.Planned(now) {
		t.Errorf("at a day ahead: %v, at %v", err, r.At)
	}
}
