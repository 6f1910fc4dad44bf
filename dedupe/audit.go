package dedupe

import (
	"time"

	"github.com/outreach/outreach/contact"
)

// Record is the audit record of a decision: what was asked, by whom, what
// was answered and why, under which policy. A live check makes one, a scrub
// one summary, an erasure one. It never holds a phone number.
type Record struct {
	Kind       string    `json:"kind"` // RecordCheck, RecordScrub or RecordErasure
	Time       time.Time `json:"time"`
	Instance   string    `json:"instance"`
	Role       string    `json:"role,omitempty"`
	KeyID      string    `json:"key_id,omitempty"` // identifies the API key, never is it
	CustomerID string    `json:"customer_id,omitempty"`

	Request *RecordRequest `json:"request,omitempty"`
	Allowed bool           `json:"allowed"`
	Reasons []RecordReason `json:"reasons,omitempty"`
	Claim   string         `json:"claim,omitempty"` // the token of the claim taken, if any
	Policy  string         `json:"policy"`          // the version of the policy in force (Policy.Version)

	Scrub *ScrubSummary `json:"scrub,omitempty"`
}

// Kinds of Record.
const (
	RecordCheck   = "check"
	RecordScrub   = "scrub"
	RecordErasure = "erasure"
)

// RecordRequest is what a check asked, without its phone number.
type RecordRequest struct {
	Channel  contact.Channel `json:"channel"`
	Purpose  string          `json:"purpose"`
	Campaign string          `json:"campaign,omitempty"`
	Team     string          `json:"team,omitempty"`
	Agent    string          `json:"agent,omitempty"`
	Product  string          `json:"product,omitempty"`
	Offer    *contact.Offer  `json:"offer,omitempty"`
	At       *time.Time      `json:"at,omitempty"` // a planned check's time
}

// RecordReason is a reason of a decision with the ids of its evidence, and
// the team and campaign of the evidence: who the check collided with.
type RecordReason struct {
	Code     string   `json:"code"`
	Warning  bool     `json:"warning,omitempty"`
	EventIDs []string `json:"event_ids,omitempty"`
	List     string   `json:"list,omitempty"`
	Team     string   `json:"team,omitempty"`
	Campaign string   `json:"campaign,omitempty"`
	Product  string   `json:"product,omitempty"`
}

// ScrubSummary is what a scrub answered, in sum.
type ScrubSummary struct {
	Rows    int            `json:"rows"`
	Allowed int            `json:"allowed"`
	Blocked map[string]int `json:"blocked"` // rows blocked by each reason code
	Invalid int            `json:"invalid"`
	Policy  string         `json:"policy"` // live, a preset's name, or inline
}

// CheckRecord makes the record of a live check of req, answered with res.
func CheckRecord(req *Request, res *Result, policy string, at time.Time) Record {
	r := Record{
		Kind: RecordCheck, Time: at, CustomerID: req.CustomerID, Allowed: res.Allowed, Policy: policy,
		Request: &RecordRequest{Channel: req.Channel, Purpose: req.Purpose, Campaign: req.Campaign, Team: req.Team,
			Agent: req.Agent, Product: req.Product, Offer: req.Offer},
	}
	if req.At.After(at) {
		t := req.At
		r.Request.At = &t
	}
	for _, x := range res.Reasons {
		rr := RecordReason{Code: x.Code, Warning: x.Warning, List: x.List, Team: x.Team, Campaign: x.Campaign, Product: x.Product}
		if x.EventID != "" {
			rr.EventIDs = []string{x.EventID}
		}
		r.Reasons = append(r.Reasons, rr)
	}
	if res.Claim != nil {
		r.Claim = res.Claim.Token
	}
	return r
}
