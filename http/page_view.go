package http

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// The views of the agent page: the data its templates render.

// stamp is a time as the page shows it: relative to now and absolute in
// UTC. The script rewrites both in the agent's local time.
type stamp struct {
	ISO string // RFC 3339, for <time datetime>
	Abs string // "Mon 23 Nov 2026 09:00 UTC"
	Rel string // "2h ago", "in 3d"
	Day string // "23 Nov 2026"
}

func newStamp(t, now time.Time) stamp {
	t = t.UTC()
	return stamp{ISO: t.Format(time.RFC3339), Abs: t.Format("Mon 2 Jan 2006 15:04 UTC"), Rel: dedupe.Ago(t, now), Day: t.Format("2 Jan 2006")}
}

func stampPtr(t *time.Time, now time.Time) *stamp {
	if t == nil {
		return nil
	}
	s := newStamp(*t, now)
	return &s
}

func money(p *contact.Money) string {
	if p == nil {
		return ""
	}
	return p.String()
}

func hasCode(rs []dedupe.Reason, code string) bool {
	for _, r := range rs {
		if r.Code == code {
			return true
		}
	}
	return false
}

var channelNames = map[contact.Channel]string{
	contact.Call: "Call", contact.SMS: "SMS", contact.Email: "Email",
	contact.Mail: "Letter", contact.Visit: "Visit", contact.Chat: "Chat",
}

// channelActions complete "you may … now".
var channelActions = map[contact.Channel]string{
	contact.Call: "call", contact.SMS: "send an SMS", contact.Email: "send an email",
	contact.Mail: "send a letter", contact.Visit: "visit", contact.Chat: "start a chat",
}

// optChannelNames complete "Opted out of …".
var optChannelNames = map[contact.Channel]string{
	contact.Call: "calls", contact.SMS: "SMS", contact.Email: "email",
	contact.Mail: "letters", contact.Visit: "visits", contact.Chat: "chat",
}

// optOutNames say what an opt-out of a channel stops.
var optOutNames = map[contact.Channel]string{
	contact.Call: "No calls", contact.SMS: "No SMS", contact.Email: "No email",
	contact.Mail: "No letters", contact.Visit: "No visits", contact.Chat: "No chat",
}

var reasonLabels = map[string]string{
	dedupe.CodeOptedOut:         "Opted out",
	dedupe.CodeDoNotCall:        "Do-not-call list",
	dedupe.CodeClaimed:          "Someone is calling now",
	dedupe.CodeOpenComplaint:    "Open complaint",
	dedupe.CodeQuietHours:       "Quiet hours",
	dedupe.CodeRecentContact:    "Contacted recently",
	dedupe.CodeFrequencyCap:     "Contacted too often",
	dedupe.CodeAlreadyPurchased: "Already bought",
	dedupe.CodeBetterOffer:      "A better offer stands",
	dedupe.CodeUnavailable:      "History unavailable",
}

// Outcome tones colour the outcome pill.
var outcomeTones = map[string]string{
	"sale": "good", "connected": "info", "delivered": "info", "sent": "info", "callback_requested": "info",
	"voicemail": "muted", "no_answer": "muted", "busy": "muted",
	"refused": "bad", "bounced": "bad", "complaint": "bad",
}

// panelView is the data of the customer panel.
type panelView struct {
	CustomerID   string
	CheckURL     string // where the check form posts
	Complaints   []complaintView
	Claims       []claimView
	Suppressions []reasonView
	LiveProblem  string // claims and lists could not be read
	Products     []productView
	Offers       []offerView
	OptOuts      []optOutView
	LastContacts []lastContactView
	Decisions    []decisionView // the last checks, from the audit trail
	Timeline     timelineView
	Empty        bool // nothing on record
	// For the check form.
	Channels       []option
	Purposes       []option
	ProductChoices []string
	Currency       string
}

type option struct{ Value, Label string }

type complaintView struct {
	CaseID, Owner, Summary string
	Opened                 stamp
	Product                string
	FollowUp               string // "Follow-up due since 2 days, owner b.smith"
	FollowUpState          string // due, upcoming, done, or ""
}

// addFollowUps sets the follow-up line of each open complaint.
func (v *panelView) addFollowUps(items []check.FollowUpItem, now time.Time) {
	byCase := map[string]*check.FollowUpItem{}
	for i := range items {
		byCase[items[i].CaseID] = &items[i]
	}
	for i := range v.Complaints {
		c := &v.Complaints[i]
		it := byCase[c.CaseID]
		switch {
		case it == nil:
		case it.FollowedUp != nil:
			t := it.FollowedUp
			c.FollowUpState, c.FollowUp = "done", "Followed up "+spell(now.Sub(t.At))+" ago"
			if t.Agent != "" {
				c.FollowUp += " by " + t.Agent
			}
		case it.State == dedupe.FollowUpDue:
			c.FollowUpState, c.FollowUp = "due", "Follow-up due since "+spell(now.Sub(it.DueAt))
			if it.Owner != "" {
				c.FollowUp += ", owner " + it.Owner
			}
		case it.State == dedupe.FollowUpUpcoming:
			c.FollowUpState, c.FollowUp = "upcoming", "Follow-up due in "+spell(it.DueAt.Sub(now))
		}
	}
}

// spell writes a duration in words: "40 minutes", "5 hours", "2 days".
func spell(d time.Duration) string {
	n, unit := int64(d/time.Minute), "minute"
	switch {
	case d >= 48*time.Hour:
		n, unit = int64(d/(24*time.Hour)), "day"
	case d >= 2*time.Hour:
		n, unit = int64(d/time.Hour), "hour"
	case d < time.Minute:
		return "less than a minute"
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.FormatInt(n, 10) + " " + unit
}

type claimView struct {
	Agent, Campaign string
	Until           stamp
}

type productView struct {
	Product, Price, OrderID string
	Bought                  stamp
}

type offerView struct {
	Product, Price, Channel, Campaign, Agent string
	Made, Expires                            stamp
}

type optOutView struct {
	What, Reason string
	Since        stamp
}

type lastContactView struct {
	Channel, Icon, Agent, Outcome string
	At                            stamp
}

// decisionView is a check of the audit trail: "checked 4 min ago by dialer
// for campaign autumn: blocked, recent_contact".
type decisionView struct {
	At       stamp
	Who      string // the role, or the agent
	Campaign string
	Allowed  bool
	Codes    string
}

type reasonView struct {
	Code, Label, Message, List string
	Warning                    bool
	Expires                    *stamp
}

type timelineView struct {
	CustomerID string
	Events     []eventView
	Next       string // before= of the next page, when there may be one
}

// eventView is one timeline entry, ready to render.
type eventView struct {
	ID        string
	Kind      string // contact, purchase, complaint, complaint-resolved, opt
	Icon      string // the id of its icon in the page's sprite
	Title     string
	Direction string // outbound or inbound, for contacts
	Agent     string
	Team      string
	Outcome   string
	Tone      string // the outcome's colour
	Summary   string // a complaint's summary or an opt-out's reason
	Note      string // "since resolved", for a complaint no longer open
	Facts     []fact
	At        stamp
}

type fact struct {
	Name, Value string
	Until       *stamp // an offer's expiry
}

// newEventView prepares e for the timeline; open holds the case ids of the
// complaints still open, so that an old complaint reads as such.
func newEventView(e *contact.Event, open map[string]bool, now time.Time) eventView {
	v := eventView{ID: e.ID, At: newStamp(e.At, now), Agent: e.Agent, Team: e.Team}
	add := func(name, value string) {
		if value != "" {
			v.Facts = append(v.Facts, fact{Name: name, Value: value})
		}
	}
	switch e.Type {
	case contact.TypeContact:
		v.Kind, v.Icon, v.Title = "contact", "i-"+string(e.Channel), channelNames[e.Channel]
		v.Direction = string(e.Direction)
		if v.Direction == "" {
			v.Direction = string(contact.Outbound)
		}
		v.Outcome = strings.ReplaceAll(e.Outcome, "_", " ")
		v.Tone = outcomeTones[e.Outcome]
		add("Campaign", e.Campaign)
		add("Purpose", e.Purpose)
		add("Product", e.Product)
		if o := e.Offer; o != nil {
			f := fact{Name: "Offer", Value: money(o.Price), Until: stampPtr(o.ExpiresAt, now)}
			if f.Value == "" {
				f.Value = o.ID
			}
			v.Facts = append(v.Facts, f)
		}
	case contact.TypePurchase:
		v.Kind, v.Icon, v.Title = "purchase", "i-purchase", "Bought "+e.Product
		add("Price", money(e.Price))
		add("Order", e.OrderID)
		add("Channel", channelNames[e.Channel])
	case contact.TypeComplaint:
		v.Kind, v.Icon, v.Title = "complaint", "i-complaint", "Complaint opened"
		switch {
		case e.Status == contact.ComplaintResolved:
			v.Kind, v.Icon, v.Title = "complaint-resolved", "i-resolved", "Complaint resolved"
		case !open[e.CaseID]:
			v.Kind, v.Note = "complaint-closed", "since resolved"
		}
		v.Summary = e.Summary
		add("Case", e.CaseID)
		add("Owner", e.Owner)
		add("Product", e.Product)
	case contact.TypeOptOut, contact.TypeOptIn:
		what := "all channels"
		if e.Channel != "" {
			what = optChannelNames[e.Channel]
		}
		v.Kind, v.Icon, v.Title = "opt", "i-optout", "Opted out of "+what
		if e.Type == contact.TypeOptIn {
			v.Icon, v.Title = "i-optin", "Opted in to "+what
		}
		v.Summary = e.Reason
	default:
		v.Kind, v.Icon, v.Title = "contact", "i-info", string(e.Type)
	}
	if v.Title == "" {
		v.Title = string(e.Channel)
	}
	return v
}

func newPanelView(id string, st *contact.State, p *dedupe.Policy, now time.Time) panelView {
	v := panelView{CustomerID: id, CheckURL: "/customers/" + url.PathEscape(id) + "/check"}
	for _, e := range st.OpenComplaints() {
		v.Complaints = append(v.Complaints, complaintView{CaseID: e.CaseID, Owner: e.Owner, Summary: e.Summary, Product: e.Product, Opened: newStamp(e.At, now)})
	}
	// The oldest open complaint has waited longest: it leads.
	slices.SortStableFunc(v.Complaints, func(a, b complaintView) int { return strings.Compare(a.Opened.ISO, b.Opened.ISO) })

	products := map[string]bool{}
	for product, e := range st.Purchases {
		v.Products = append(v.Products, productView{Product: product, Price: money(e.Price), OrderID: e.OrderID, Bought: newStamp(e.At, now)})
		products[product] = true
	}
	slices.SortFunc(v.Products, func(a, b productView) int {
		if c := strings.Compare(b.Bought.ISO, a.Bought.ISO); c != 0 {
			return c
		}
		return strings.Compare(a.Product, b.Product)
	})

	for _, e := range st.Offers { // newest first
		o := e.Offer
		if o == nil {
			continue
		}
		expires := e.At.Add(p.OfferWindow())
		if o.ExpiresAt != nil {
			expires = *o.ExpiresAt
		}
		if !expires.After(now) {
			continue
		}
		v.Offers = append(v.Offers, offerView{Product: e.Product, Price: money(o.Price), Channel: channelNames[e.Channel],
			Campaign: e.Campaign, Agent: e.Agent, Made: newStamp(e.At, now), Expires: newStamp(expires, now)})
		if o.Price != nil && v.Currency == "" {
			v.Currency = o.Price.Currency
		}
		if e.Product != "" {
			products[e.Product] = true
		}
	}

	// An opt-out of every channel shows on each channel: show it once.
	seen := map[string]bool{}
	for _, ch := range contact.Channels {
		e, ok := st.OptOutInForce(ch)
		if !ok {
			continue
		}
		what := optOutNames[ch]
		if e.Channel == "" {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			what = "No contact on any channel"
		}
		v.OptOuts = append(v.OptOuts, optOutView{What: what, Reason: e.Reason, Since: newStamp(e.At, now)})
	}

	for _, ch := range contact.Channels {
		if e, ok := st.LastContacts[ch]; ok {
			v.LastContacts = append(v.LastContacts, lastContactView{Channel: channelNames[ch], Icon: "i-" + string(ch), Agent: e.Agent,
				Outcome: strings.ReplaceAll(e.Outcome, "_", " "), At: newStamp(e.At, now)})
		}
	}
	slices.SortStableFunc(v.LastContacts, func(a, b lastContactView) int { return strings.Compare(b.At.ISO, a.At.ISO) })

	for _, ch := range contact.Channels {
		v.Channels = append(v.Channels, option{string(ch), channelNames[ch]})
	}
	for _, p := range contact.Purposes {
		v.Purposes = append(v.Purposes, option{p, strings.ToUpper(p[:1]) + p[1:]})
	}
	for product := range products {
		v.ProductChoices = append(v.ProductChoices, product)
	}
	slices.Sort(v.ProductChoices)
	return v
}

// verdictView is the answer to "Can I call now?".
type verdictView struct {
	Allowed     bool
	Blocking    int
	Warnings    int
	Reasons     []reasonView
	Request     dedupe.Request
	ChannelName string
	Action      string // "call", "send an SMS"…
	Price       string
	Checked     stamp
}
