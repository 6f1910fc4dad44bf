package contact

import "time"

// Claim is an active claim on a customer: the agent that holds it may contact
// the customer until ExpiresAt, and no one else may.
type Claim struct {
	Token     string    `json:"token,omitempty"`
	Agent     string    `json:"agent,omitempty"`
	Campaign  string    `json:"campaign,omitempty"`
	ExpiresAt time.Time `json:"expires_at"` // zero: until released
}

// Suppression is an entry of a suppression (do-not-call) list that names a
// customer or a phone number.
type Suppression struct {
	List       string     `json:"list"`
	Reason     string     `json:"reason,omitempty"`
	CustomerID string     `json:"customer_id,omitempty"`
	Phone      string     `json:"phone,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"` // nil: never
}

// Lookup asks a store for what one check must know of a customer.
type Lookup struct {
	CustomerID string
	Phones     []string // numbers in E.164 form to look up on suppression lists
	// Claim, if not nil, is a claim to take when no one holds the customer:
	// its Agent, Campaign and ExpiresAt, for ClaimTTL. The store makes the
	// token.
	Claim    *Claim
	ClaimTTL time.Duration
	// OfferProducts, when not nil, limits State.Offers to the offers of
	// the products it names, and to none when it is empty: a check needs
	// the offers of its own product at most, and a store need not decode
	// the others. nil reads them all.
	OfferProducts []string
	// FollowUps asks for the customer's follow-ups too.
	FollowUps bool
}

// Facts is what a store read for one Lookup. When Err is set, the facts
// could not be read (EUnavailable) and nothing else is set: a check must
// not be decided from them.
type Facts struct {
	State        State
	Claim        *Claim // the claim someone else holds on the customer; nil if none
	Taken        *Claim // the claim the Lookup took, with its token; nil if it took none
	Suppressions []Suppression
	FollowUps    []FollowUp // read only when the Lookup asks for them
	Err          error
}
