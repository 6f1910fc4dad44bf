package dedupe

import (
	"strconv"
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
)

// The messages of the reasons are sentences an agent can read aloud. Dates
// and times are in UTC and say so where a time of day is shown.

const dateLayout = "2006-01-02"

// Ago writes how far t is from now, as messages and the agent page show
// it: "just now", "45m ago", "2h ago", "3d ago", or "in 20d" for a time to
// come. Hours run up to two days, so that a 72h cooldown reads well.
func Ago(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d < 48*time.Hour:
		s = strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	default:
		s = strconv.FormatInt(int64(d/day), 10) + "d"
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func quote(s string) string { return strconv.Quote(s) }

var verbs = map[contact.Channel]string{
	contact.Call:  "called",
	contact.SMS:   "texted",
	contact.Email: "emailed",
	contact.Mail:  "mailed",
	contact.Visit: "visited",
	contact.Chat:  "messaged on chat",
}

// contactMessage: "called by a.jones (retention) 2h ago, outcome voicemail".
func contactMessage(e *contact.Event, now time.Time) string {
	var b strings.Builder
	verb, ok := verbs[e.Channel]
	if !ok {
		verb = "contacted on " + string(e.Channel)
	}
	b.WriteString(verb)
	if e.Agent != "" {
		b.WriteString(" by " + e.Agent)
	}
	if e.Team != "" {
		b.WriteString(" (" + e.Team + ")")
	}
	b.WriteString(" " + Ago(e.At, now))
	if e.Outcome != "" {
		b.WriteString(", outcome " + strings.ReplaceAll(e.Outcome, "_", " "))
	}
	return b.String()
}

// capMessage: "3 outbound contacts in the last 7d, the limit is 3; the latest:
// emailed by c.wu 5h ago".
func capMessage(count, limit int, window time.Duration, latest *contact.Event, now time.Time) string {
	return strconv.Itoa(count) + " outbound contacts in the last " + formatDuration(window) +
		", the limit is " + strconv.Itoa(limit) + "; the latest: " + contactMessage(latest, now)
}

// purchaseMessage: "bought broadband-500 on 2026-03-02 (order 991)".
func purchaseMessage(e *contact.Event) string {
	s := "bought " + e.Product + " on " + e.At.UTC().Format(dateLayout)
	if e.OrderID != "" {
		s += " (order " + e.OrderID + ")"
	}
	return s
}

// offerMessage: "offered broadband-500 at 39.00 EUR by mail 6d ago, valid
// until 2026-12-01".
func offerMessage(e *contact.Event, now, expiry time.Time) string {
	s := "offered " + e.Product + " at " + e.Offer.Price.String()
	if e.Channel != "" {
		s += " by " + string(e.Channel)
	}
	return s + " " + Ago(e.At, now) + ", valid until " + expiry.UTC().Format(dateLayout)
}

// complaintMessage: "open complaint 77 (owner b.smith) since 3d ago".
func complaintMessage(e *contact.Event, now time.Time) string {
	s := "open complaint " + e.CaseID
	if e.Owner != "" {
		s += " (owner " + e.Owner + ")"
	}
	return s + " since " + Ago(e.At, now)
}

// followUpMessage: "you own complaint K-1 and its follow-up is overdue: due 2d ago, opened 4d ago".
func followUpMessage(f *contact.FollowUp, due, now time.Time) string {
	return "you own complaint " + f.CaseID + " and its follow-up is overdue: due " + Ago(due, now) + ", opened " + Ago(f.OpenedAt, now)
}

// optOutMessage: `opted out of call on 2026-01-10: "stop calling"`.
func optOutMessage(e *contact.Event) string {
	what := "all channels"
	if e.Channel != "" {
		what = string(e.Channel)
	}
	s := "opted out of " + what + " on " + e.At.UTC().Format(dateLayout)
	if e.Reason != "" {
		s += ": " + quote(e.Reason)
	}
	return s
}

// suppressionMessage: `on do-not-call list national until 2027-01-01:
// "registered with the regulator"`.
func suppressionMessage(s *Suppression) string {
	m := "on do-not-call list " + s.List
	if s.ExpiresAt != nil {
		m += " until " + s.ExpiresAt.UTC().Format(dateLayout)
	}
	if s.Reason != "" {
		m += ": " + quote(s.Reason)
	}
	return m
}

// claimMessage: "claimed by dialer-7 (campaign spring) until 14:05 UTC".
func claimMessage(c *Claim, now time.Time) string {
	who := c.Agent
	if who == "" {
		who = "another agent"
	}
	m := "claimed by " + who
	if c.Campaign != "" {
		m += " (campaign " + c.Campaign + ")"
	}
	switch exp := c.ExpiresAt.UTC(); {
	case c.ExpiresAt.IsZero():
		m += " until released"
	case exp.Sub(now) < 12*time.Hour:
		m += " until " + exp.Format("15:04") + " UTC"
	default:
		m += " until " + exp.Format(dateLayout+" 15:04") + " UTC"
	}
	return m
}
