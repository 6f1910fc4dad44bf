package dedupe_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

func TestDefaultPolicy(t *testing.T) {
	empty := mustParse(t, "# nothing but a comment\n")
	for name, p := range map[string]*dedupe.Policy{"DefaultPolicy": dedupe.DefaultPolicy(), "empty file": empty} {
		t.Run(name, func(t *testing.T) {
			for _, c := range []struct {
				what      string
				got, want time.Duration
			}{
				{"ContactWindow", p.ContactWindow(), 7 * day},
				{"PurchaseLookback", p.PurchaseLookback(), 365 * day},
				{"OfferWindow", p.OfferWindow(), 30 * day},
				{"ClaimTTL", p.ClaimTTL(), 15 * time.Minute},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			if p.FailOpen() {
				t.Error("FailOpen = true, want false")
			}
		})
	}
}

func TestPolicyWindows(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       time.Duration
	}{
		{"longer frequency window", "frequency_cap: {window: 10d}", 10 * day},
		{"disabled cap", "frequency_cap: {max: 0, window: 10d}", 7 * day},
		{"base cooldown", "cooldowns: {mail: 14d}", 14 * day},
		{"channel override", "channels: {visit: {cooldown: 20d}}", 20 * day},
		{"campaign cooldown", "campaigns: {c: {cooldowns: {sms: 30d}}}", 30 * day},
		{"campaign window", "campaigns: {c: {frequency_cap: {window: 1d12h}}}", 7 * day},
		{"campaign window longer", "campaigns: {c: {frequency_cap: {window: 400d}}}", 400 * day},
		{"all off", "cooldowns: {call: 0, sms: 0, email: 0, mail: 0, visit: 0}\nfrequency_cap: {max: 0}", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.yaml).ContactWindow(); got != tt.want {
				t.Errorf("ContactWindow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParsePolicyDurations(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"7d", 7 * day},
		{"400d", 400 * day},
		{"36h", 36 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"90m", 90 * time.Minute},
		{"0", 0},
		{"0d", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p := mustParse(t, "purchase_lookback: "+tt.in)
			if got := p.PurchaseLookback(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"bad duration", "claim_ttl: 5m\n\ncooldowns:\n  sms: 1h\n  mail: 7d\n\n  call: 3x\n",
			`policy: line 7: cooldowns.call: invalid duration "3x"`},
		{"negative duration", "offer_validity: -5m", `policy: line 1: offer_validity: duration "-5m" must not be negative`},
		{"negative days", "offer_validity: -5d", `policy: line 1: offer_validity: invalid duration "-5d"`},
		{"fractional days", "offer_validity: 1.5d", `policy: line 1: offer_validity: invalid duration "1.5d"`},
		{"too many days", "offer_validity: 99999999d", `policy: line 1: offer_validity: invalid duration "99999999d"`},
		{"zero claim_ttl", "claim_ttl: 0", "policy: line 1: claim_ttl: must be positive"},
		{"unknown key", "cooldown:\n  call: 1h",
			"policy: line 1: cooldown: unknown key; want one of cooldowns, frequency_cap, purchase_lookback, offer_validity, followup_sla, quiet_hours, claim_ttl, on_unavailable, exempt, open_complaint, channels, campaigns, teams"},
		{"unknown channel", "cooldowns:\n  fax: 1h", "policy: line 2: cooldowns.fax: unknown channel; want one of call, sms, email, mail, visit, chat"},
		{"duplicate key", "claim_ttl: 1m\nclaim_ttl: 2m", "policy: line 2: claim_ttl: duplicate key"},
		{"not a mapping", "- a\n- b", "policy: line 1: (top level): must be a mapping"},
		{"list for a duration", "claim_ttl: [1m]", "policy: line 1: claim_ttl: must be a single value"},
		{"syntax", "cooldowns: {call: 1h", "policy: yaml: line 1: did not find expected ',' or '}'"},
		{"frequency max", "frequency_cap:\n  max: -1", `policy: line 2: frequency_cap.max: must be a whole number, 0 or more; got "-1"`},
		{"frequency window", "frequency_cap:\n  window: 0", "policy: line 2: frequency_cap.window: must be positive; set max: 0 to disable the cap"},
		{"frequency unknown", "frequency_cap: {max: 1, per: 1d}", "policy: line 1: frequency_cap.per: unknown key; want one of max, window"},
		{"on_unavailable", "on_unavailable: maybe", `policy: line 1: on_unavailable: must be open or closed; got "maybe"`},
		{"quiet hours time", "quiet_hours:\n  start: \"21:00\"\n  end: \"8am\"", `policy: line 3: quiet_hours.end: invalid time "8am"; want HH:MM, such as 21:00`},
		{"quiet hours half", "quiet_hours: {start: \"21:00\"}", "policy: line 1: quiet_hours: set both start and end, or neither to disable quiet hours"},
		{"quiet hours equal", "quiet_hours: {start: \"21:00\", end: \"21:00\"}", "policy: line 1: quiet_hours: start and end are both 21:00; leave both empty to disable quiet hours"},
		{"exempt opted_out", "exempt:\n  service: [recent_contact, opted_out]",
			"policy: line 2: exempt.service: opted_out cannot be exempted: an opt-out binds every purpose"},
		{"exempt do_not_call", "exempt:\n  recovery:\n    - do_not_call",
			"policy: line 3: exempt.recovery: do_not_call cannot be exempted: a suppression list binds every purpose"},
		{"exempt claimed", "campaigns:\n  spring:\n    exempt: {sales: [claimed]}",
			"policy: line 3: campaigns.spring.exempt.sales: claimed cannot be exempted: a claim is what keeps two agents from contacting a customer at once"},
		{"exempt open_complaint", "exempt: {info: [open_complaint]}",
			"policy: line 1: exempt.info: open_complaint cannot be exempted: set open_complaint.block instead"},
		{"exempt unknown code", "exempt: {info: [cooldown]}",
			`policy: line 1: exempt.info: unknown reason code "cooldown"; want one of recent_contact, frequency_cap, already_purchased, better_offer, quiet_hours`},
		{"exempt unknown purpose", "exempt: {marketing: []}",
			"policy: line 1: exempt.marketing: unknown purpose; want one of sales, service, recovery, collections, survey, info"},
		{"complaint purpose", "open_complaint:\n  block: [sales, spam]",
			`policy: line 2: open_complaint.block: unknown purpose "spam"; want one of sales, service, recovery, collections, survey, info`},
		{"channel key", "channels:\n  call:\n    cooldowns: 1h", "policy: line 3: channels.call.cooldowns: unknown key; want one of cooldown, quiet_hours"},
		{"channel name", "channels:\n  pigeon: {cooldown: 1h}", "policy: line 2: channels.pigeon: unknown channel; want one of call, sms, email, mail, visit, chat"},
		{"campaign key", "campaigns:\n  spring:\n    claim_ttl: 1m", "policy: line 3: campaigns.spring.claim_ttl: unknown key; want one of cooldowns, frequency_cap, quiet_hours, exempt"},
		{"campaign duration", "campaigns:\n  spring:\n    cooldowns:\n      call: 2 days", `policy: line 4: campaigns.spring.cooldowns.call: invalid duration "2 days"`},
		{"team key", "teams:\n  retention:\n    cooldowns: {}", "policy: line 3: teams.retention.cooldowns: unknown key; want one of followup_sla"},
		{"team sla", "teams:\n  retention: {followup_sla: soon}", `policy: line 2: teams.retention.followup_sla: invalid duration "soon"`},
		{"followup sla", "followup_sla: -1h", `policy: line 1: followup_sla: duration "-1h" must not be negative`},
		{"every error", "claim_ttl: x\nfoo: 1\ncooldowns: {sms: y}",
			"policy: line 1: claim_ttl: invalid duration \"x\"\n" +
				"policy: line 2: foo: unknown key; want one of cooldowns, frequency_cap, purchase_lookback, offer_validity, followup_sla, quiet_hours, claim_ttl, on_unavailable, exempt, open_complaint, channels, campaigns, teams\n" +
				"policy: line 3: cooldowns.sms: invalid duration \"y\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := dedupe.ParsePolicy([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if p != nil {
				t.Error("got a policy with the error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParsePolicyQuietHours(t *testing.T) {
	night := time.Date(2026, 4, 10, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		name, yaml string
		at         time.Time
		quiet      bool
	}{
		{"default at night", "", night, true},
		{"disabled with {}", "quiet_hours: {}", night, false},
		{"disabled with empty string", `quiet_hours: ""`, night, false},
		{"disabled with empty values", `quiet_hours: {start: "", end: ""}`, night, false},
		{"disabled with null", "quiet_hours:", night, false},
		{"span within a day", `quiet_hours: {start: "12:00", end: "14:00"}`, time.Date(2026, 4, 10, 13, 0, 0, 0, time.UTC), true},
		{"outside a span within a day", `quiet_hours: {start: "12:00", end: "14:00"}`, night, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := dedupe.Request{CustomerID: "c1", Channel: contact.Call, Timezone: "UTC", At: tt.at}
			if err := req.Normalize(now, contact.Defaults{}); err != nil {
				t.Fatal(err)
			}
			d := dedupe.Decide(mustParse(t, tt.yaml), &req, nil, now)
			if got := codes(d) == "quiet_hours"; got != tt.quiet {
				t.Errorf("quiet = %v, want %v: %s", got, tt.quiet, toJSON(t, d))
			}
		})
	}
}

func TestParsePolicyAliases(t *testing.T) {
	p := mustParse(t, `
campaigns:
  a: &shared
    cooldowns: {call: 90d}
  b: *shared
`)
	if got, want := p.ContactWindow(), 90*day; got != want {
		t.Errorf("ContactWindow = %v, want %v", got, want)
	}
}

// TestDeploymentPolicy parses the policy shipped in deployments/ and checks
// that it means what its comments say.
func TestDeploymentPolicy(t *testing.T) {
	data, err := os.ReadFile("../deployments/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := dedupe.ParsePolicy(data)
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	if got, want := p.ContactWindow(), 7*day; got != want {
		t.Errorf("ContactWindow = %v, want %v", got, want)
	}
	if got, want := p.PurchaseLookback(), 365*day; got != want {
		t.Errorf("PurchaseLookback = %v, want %v", got, want)
	}
	if got, want := p.OfferWindow(), 30*day; got != want {
		t.Errorf("OfferWindow = %v, want %v", got, want)
	}
	if got, want := p.ClaimTTL(), 15*time.Minute; got != want {
		t.Errorf("ClaimTTL = %v, want %v", got, want)
	}
	if p.FailOpen() {
		t.Error("FailOpen = true, want false")
	}
	night := time.Date(2026, 4, 10, 22, 0, 0, 0, time.UTC) // midnight in Berlin
	for _, tt := range []struct {
		ch   contact.Channel
		want string
	}{{contact.Call, "quiet_hours"}, {contact.Email, ""}} {
		req := dedupe.Request{CustomerID: "c1", Channel: tt.ch, Timezone: "Europe/Berlin", At: night}
		if err := req.Normalize(now, contact.Defaults{}); err != nil {
			t.Fatal(err)
		}
		if got := codes(dedupe.Decide(p, &req, nil, now)); got != tt.want {
			t.Errorf("%s at night: got %q, want %q", tt.ch, got, tt.want)
		}
	}
}

func TestParsePolicyOneDocument(t *testing.T) {
	_, err := dedupe.ParsePolicy([]byte("claim_ttl: 1m\n---\nclaim_ttl: 2m\n"))
	if got, want := fmt.Sprint(err), "policy: the file holds more than one YAML document"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, in := range []string{"", "\n", "---\n", "# comment only\n"} {
		p, err := dedupe.ParsePolicy([]byte(in))
		if err != nil || p.ClaimTTL() != 15*time.Minute {
			t.Errorf("ParsePolicy(%q) = %v, %v; want the defaults", in, p, err)
		}
	}
}

func TestFollowUpSLA(t *testing.T) {
	if got := dedupe.DefaultPolicy().FollowUpSLA("retention"); got != 48*time.Hour {
		t.Errorf("default SLA = %v, want 48h", got)
	}
	p, err := dedupe.ParsePolicy([]byte("followup_sla: 3d\nteams:\n  retention: {followup_sla: 24h}\n  outsourced: {followup_sla: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for team, want := range map[string]time.Duration{"retention": 24 * time.Hour, "outsourced": 0, "": 72 * time.Hour, "sales": 72 * time.Hour} {
		if got := p.FollowUpSLA(team); got != want {
			t.Errorf("FollowUpSLA(%q) = %v, want %v", team, got, want)
		}
	}
}
