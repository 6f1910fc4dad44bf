// Package dedupe decides whether a customer may be contacted now: on this
// channel, for this purpose, about this offer. It holds the contact policy and
// the decision, and does no I/O: a store reads the customer's [Facts] in one
// round trip and [Decide] turns them into a [Decision] that lists every
// reason against the contact, each with its evidence.
//
// A blocked contact is a Decision with Allowed false, not an error. Errors
// come only from [Request.Normalize] (contact.EInvalid) and [ParsePolicy].
//
// # Policy file
//
// [ParsePolicy] reads YAML. Every key is optional: an absent key keeps its
// default, shown here. Durations are Go durations ("36h", "15m") or whole
// days with an optional Go duration after them ("7d", "400d", "1d12h"); 0
// disables the rule it belongs to. Unknown keys are errors.
//
//	cooldowns:          # per channel: no outbound contact on the same channel within this
//	  call: 72h
//	  sms: 24h
//	  email: 24h
//	  mail: 7d
//	  visit: 7d
//	  chat: 0
//	frequency_cap:      # at most max outbound contacts, all channels, in any rolling window
//	  max: 3            # 0 disables the cap
//	  window: 7d
//	purchase_lookback: 365d   # already_purchased looks this far back
//	offer_validity: 30d       # an offer without expires_at is valid this long after it was made
//	followup_sla: 48h         # an open complaint's follow-up is due this long after it opened
//	quiet_hours:              # customer's local time; may wrap midnight; {} or "" disables
//	  start: "21:00"
//	  end: "08:00"
//	claim_ttl: 15m
//	on_unavailable: closed    # or open: the decision when the store cannot be read
//	exempt:                   # purpose: reason codes that purpose skips
//	  recovery: [recent_contact, frequency_cap, better_offer]
//	  service: [recent_contact, frequency_cap, better_offer]
//	open_complaint:
//	  block: [sales, survey, collections]   # other purposes get a warning only
//	channels:                 # per channel overrides
//	  email:
//	    cooldown: 12h
//	    quiet_hours: {}
//	campaigns:                # per campaign overrides, matched on Request.Campaign
//	  spring:
//	    cooldowns: {call: 48h}
//	    frequency_cap: {max: 5}
//	    quiet_hours: {start: "20:00", end: "09:00"}
//	    exempt: {sales: [better_offer]}
//	teams:                    # per team overrides, matched on the complaint's team
//	  retention:
//	    followup_sla: 24h
//
// The exemptable codes are recent_contact, frequency_cap, already_purchased,
// better_offer and quiet_hours. Nothing may exempt opted_out, do_not_call or
// claimed; open_complaint is configured with open_complaint.block instead.
// Purposes are those of contact.Purposes.
//
// Overrides layer: a campaign's settings win over a channel's, which win over
// the top level. Within a layer, maps (cooldowns, exempt) merge key by key and
// the value of a key replaces the inherited one, so `exempt: {recovery: []}`
// removes recovery's exemptions; frequency_cap merges field by field;
// quiet_hours is replaced whole. A campaign's quiet_hours applies to every
// channel of that campaign.
package dedupe
