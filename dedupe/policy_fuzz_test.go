package dedupe_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// policyError is the shape of every ParsePolicy error: it names the
// policy, and the line of what it refuses when there is one.
var policyError = regexp.MustCompile(`^policy: (line \d+: .+|.+)$`)

// FuzzParsePolicy reads arbitrary policy files. A file is refused with
// errors that each start "policy:" and name the line when they name a key,
// or it is accepted, and then it reads the same twice, its windows are not
// negative, and a decision under it, over a customer with one fact of
// every kind, is answered and encodes as JSON. Seeds:
// testdata/fuzz/FuzzParsePolicy.
func FuzzParsePolicy(f *testing.F) {
	facts := state(outbound("k1", contact.Call, before(2*day)), purchase("p1", "fiber-500", before(30*day)),
		complaint("x1", "77", contact.ComplaintOpened, before(day)), offer("o1", contact.Email, before(3*day), "fiber-500", 30, nil),
		opt("t1", contact.TypeOptOut, contact.SMS, before(4*day)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := dedupe.ParsePolicy(data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !policyError.MatchString(line) {
					t.Fatalf("error line %q does not name the policy", line)
				}
				if strings.Contains(line, ": line ") && !strings.HasPrefix(line, "policy: line ") && !strings.HasPrefix(line, "policy: yaml: ") {
					t.Fatalf("error line %q names a line out of place", line)
				}
			}
			return
		}
		again, err := dedupe.ParsePolicy(data)
		if err != nil || !reflect.DeepEqual(p, again) {
			t.Fatalf("a second read differs: %v", err)
		}
		for name, d := range map[string]any{"ContactWindow": p.ContactWindow(), "PurchaseLookback": p.PurchaseLookback(),
			"OfferWindow": p.OfferWindow(), "ClaimTTL": p.ClaimTTL()} {
			if reflect.ValueOf(d).Int() < 0 {
				t.Fatalf("%s = %v", name, d)
			}
		}
		for _, ch := range contact.Channels {
			for _, purpose := range contact.Purposes {
				req := dedupe.Request{CustomerID: "c1", Channel: ch, Purpose: purpose, Product: "fiber-500", Campaign: "autumn",
					Offer: &contact.Offer{Price: eur(40)}, Timezone: "Europe/Oslo", At: now.AddDate(99, 0, 0)}
				if err := req.Normalize(now, contact.Defaults{}); err != nil {
					t.Fatal(err)
				}
				d := dedupe.Decide(p, &req, &facts, now)
				if d.Allowed == (len(blocking(d)) > 0) {
					t.Fatalf("%s/%s: allowed %v with blocking reasons %v", ch, purpose, d.Allowed, blocking(d))
				}
				if _, err := json.Marshal(d); err != nil {
					t.Fatalf("%s/%s: the decision does not encode: %v", ch, purpose, err)
				}
			}
		}
	})
}

func blocking(d dedupe.Decision) []string {
	var out []string
	for _, r := range d.Reasons {
		if !r.Warning {
			out = append(out, r.Code)
		}
	}
	return out
}
