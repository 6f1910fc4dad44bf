package dedupe_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

var insightAt = time.Date(2026, 11, 23, 14, 37, 12, 0, time.UTC)

func checkRecord(allowed bool, campaign, team string, reasons ...dedupe.RecordReason) dedupe.Record {
	return dedupe.Record{Kind: dedupe.RecordCheck, Time: insightAt, CustomerID: "c42", Allowed: allowed, Policy: "default",
		Request: &dedupe.RecordRequest{Channel: contact.Call, Purpose: "sales", Campaign: campaign, Team: team, Product: "fiber-1000"},
		Reasons: reasons}
}

// counters renders a tally's counters as "family:field", with the field's
// separators shown as |, in order.
func counters(t dedupe.Tally) []string {
	var out []string
	for _, c := range t.Counters {
		out = append(out, c.Family+":"+strings.ReplaceAll(c.Field, "\x1f", "|"))
	}
	return out
}

func TestTallyRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  dedupe.Record
		want []string
	}{
		{"allowed", checkRecord(true, "autumn", "sales", dedupe.RecordReason{Code: "open_complaint", Warning: true}), []string{
			"reason:#checks", "campaign:autumn|#checks", "team:sales|#checks",
		}},
		{"blocked by two teams and a purchase", checkRecord(false, "autumn", "sales",
			dedupe.RecordReason{Code: "recent_contact", Team: "retention", Campaign: "winback", EventIDs: []string{"e1"}},
			dedupe.RecordReason{Code: "frequency_cap", Team: "retention", Campaign: "winback"},
			dedupe.RecordReason{Code: "better_offer", Team: "web", Product: "fiber-1000"},
			dedupe.RecordReason{Code: "already_purchased", Product: "fiber-1000"},
			dedupe.RecordReason{Code: "open_complaint", Warning: true, Team: "care"},
		), []string{
			"reason:#checks", "campaign:autumn|#checks", "team:sales|#checks",
			"reason:#blocked", "campaign:autumn|#blocked", "team:sales|#blocked",
			"reason:recent_contact", "campaign:autumn|recent_contact", "team:sales|recent_contact",
			"reason:frequency_cap", "campaign:autumn|frequency_cap", "team:sales|frequency_cap",
			"reason:better_offer", "campaign:autumn|better_offer", "team:sales|better_offer",
			"reason:already_purchased", "campaign:autumn|already_purchased", "team:sales|already_purchased",
			"collision:autumn|sales|winback|retention|recent_contact",
			"collision:autumn|sales||web|better_offer",
			"product:fiber-1000|#blocked", "product:fiber-1000|better_offer",
			"product:fiber-1000|already_purchased",
		}},
		{"no campaign or team, a list", checkRecord(false, "", "", dedupe.RecordReason{Code: "do_not_call", List: "internal"},
			dedupe.RecordReason{Code: "do_not_call", List: "national"}), []string{
			"reason:#checks", "campaign:|#checks", "team:|#checks",
			"reason:#blocked", "campaign:|#blocked", "team:|#blocked",
			"reason:do_not_call", "campaign:|do_not_call", "team:|do_not_call",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := dedupe.TallyRecord(&tc.rec, 7)
			if err != nil || !ok {
				t.Fatalf("TallyRecord: ok %v, %v", ok, err)
			}
			if got.Seq != 7 || !got.Hour.Equal(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)) {
				t.Errorf("seq %d hour %v, want 7 at 14:00", got.Seq, got.Hour)
			}
			if c := counters(got); !slices.Equal(c, tc.want) {
				t.Errorf("counters:\n got %q\nwant %q", c, tc.want)
			}
		})
	}
}

func TestTallyRecordCountsNothing(t *testing.T) {
	planned := checkRecord(true, "autumn", "sales")
	at := insightAt.Add(24 * time.Hour)
	planned.Request.At = &at
	for name, rec := range map[string]dedupe.Record{
		"scrub":   {Kind: dedupe.RecordScrub, Time: insightAt, Scrub: &dedupe.ScrubSummary{Rows: 10}},
		"erasure": {Kind: dedupe.RecordErasure, Time: insightAt, CustomerID: "c42"},
		"planned": planned,
	} {
		if _, ok, err := dedupe.TallyRecord(&rec, 1); ok || err != nil {
			t.Errorf("%s: ok %v, %v; want nothing counted and no error", name, ok, err)
		}
	}
}

func TestTallyRecordRefusesMalformed(t *testing.T) {
	noRequest := checkRecord(true, "a", "b")
	noRequest.Request = nil
	noTime := checkRecord(true, "a", "b")
	noTime.Time = time.Time{}
	for _, tc := range []struct {
		name, field string
		rec         dedupe.Record
	}{
		{"no request", "request", noRequest},
		{"no time", "time", noTime},
		{"a control character", "request.team", checkRecord(true, "a", "b\x1fc")},
		{"invalid UTF-8", "request.campaign", checkRecord(true, "a\xff", "b")},
		{"a bad code", "reasons.code", checkRecord(false, "a", "b", dedupe.RecordReason{Code: "Recent Contact"})},
		{"evidence with a separator", "reasons.team", checkRecord(false, "a", "b", dedupe.RecordReason{Code: "recent_contact", Team: "x\x1f"})},
		{"blocked without a reason", "reasons", checkRecord(false, "a", "b", dedupe.RecordReason{Code: "open_complaint", Warning: true})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok, err := dedupe.TallyRecord(&tc.rec, 1)
			var ce *contact.Error
			if ok || err == nil || contact.ErrorCode(err) != contact.EInvalid {
				t.Fatalf("ok %v, %v; want an EInvalid error", ok, err)
			}
			if errors.As(err, &ce); ce.Field != tc.field {
				t.Errorf("field %q, want %q", ce.Field, tc.field)
			}
		})
	}
}

func TestInsightFieldRoundTrip(t *testing.T) {
	keys := map[string]dedupe.InsightKey{
		dedupe.FamilyReason:    {What: "recent_contact"},
		dedupe.FamilyCampaign:  {Value: "autumn upgrade", What: dedupe.CountChecks},
		dedupe.FamilyTeam:      {Value: "", What: dedupe.CountBlocked},
		dedupe.FamilyCollision: {Campaign: "autumn", Team: "", AgainstCampaign: "winback", AgainstTeam: "retention", What: "claimed"},
		dedupe.FamilyProduct:   {Value: "fiber-1000", What: "better_offer"},
	}
	for family, k := range keys {
		got, ok := dedupe.ParseInsightField(family, k.Field(family))
		if !ok || got != k {
			t.Errorf("%s: %+v → %q → %+v, %v", family, k, k.Field(family), got, ok)
		}
	}
	for _, bad := range [][2]string{{"reason", ""}, {"campaign", "x"}, {"campaign", "x\x1f"}, {"collision", "a\x1fb"}, {"nope", "x"}} {
		if _, ok := dedupe.ParseInsightField(bad[0], bad[1]); ok {
			t.Errorf("ParseInsightField(%q, %q) is ok", bad[0], bad[1])
		}
	}
}

// FuzzTallyRecord checks that every counter of any record round-trips
// through its field.
func FuzzTallyRecord(f *testing.F) {
	f.Add("autumn", "sales", "recent_contact", "winback", "retention", "fiber")
	f.Add("", "", "better_offer", "", "", "")
	f.Fuzz(func(t *testing.T, campaign, team, code, evCampaign, evTeam, product string) {
		rec := checkRecord(false, campaign, team, dedupe.RecordReason{Code: code, Campaign: evCampaign, Team: evTeam, Product: product})
		tally, ok, err := dedupe.TallyRecord(&rec, 1)
		if err != nil || !ok {
			return
		}
		for _, c := range tally.Counters {
			k, ok := dedupe.ParseInsightField(c.Family, c.Field)
			if !ok || k.Field(c.Family) != c.Field {
				t.Errorf("%s %q does not round-trip: %+v", c.Family, c.Field, k)
			}
		}
	})
}
