package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach/outreach/contact"
)

type contactsOptions struct {
	limit  int
	before string
	json   bool
}

const contactsLong = `Print CUSTOMER's recent timeline from GET /v1/customers/{id}/contacts as a
table, newest first, and a short summary of the state derived from it: the
latest contact on each channel, purchases, open complaints, opt-outs and
offers. Times are in UTC. An unknown customer has an empty timeline.
Needs a key with the agent role.`

func (a *app) contactsCommand() *cobra.Command {
	var o contactsOptions
	cmd := &cobra.Command{
		Use:   "contacts CUSTOMER",
		Short: "Show a customer's recent timeline and state",
		Long:  contactsLong,
		Example: `  outreachctl contacts c42
  outreachctl contacts c42 --limit 200
  outreachctl contacts c42 --before NEXT   # the cursor the previous page printed`,
		Args: args("CUSTOMER"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.contacts(cmd.Context(), args[0], &o)
		}),
	}
	f := cmd.Flags()
	f.IntVar(&o.limit, "limit", 50, "most events to show, 1 to 1000")
	f.StringVar(&o.before, "before", "", "show the page after this cursor, which the previous page printed")
	f.BoolVar(&o.json, "json", false, "print the server's JSON answer")
	return cmd
}

// timeline is the answer of GET /v1/customers/{id}/contacts.
type timeline struct {
	CustomerID string          `json:"customer_id"`
	Events     []contact.Event `json:"events"`
	State      stateView       `json:"state"`
	Next       string          `json:"next"`
}

func (a *app) contacts(ctx context.Context, customer string, o *contactsOptions) error {
	if err := contact.ValidCustomerID(customer); err != nil {
		var ce *contact.Error
		errors.As(err, &ce)
		return usagef("CUSTOMER %s", ce.Message)
	}
	if o.limit < 1 || o.limit > 1000 {
		return usagef("--limit must be from 1 to 1000; got %d", o.limit)
	}
	q := url.Values{"limit": {strconv.Itoa(o.limit)}}
	if o.before != "" {
		if _, err := contact.ParseCursor("before", o.before); err != nil {
			return flagError(err)
		}
		q.Set("before", o.before)
	}
	var tl timeline
	body, err := a.client.call(ctx, "GET", "/v1/customers/"+url.PathEscape(customer)+"/contacts", q, nil, &tl)
	if err != nil {
		return err
	}
	if o.json {
		writeJSON(a.stdout, body)
		return nil
	}
	writeTimeline(a.stdout, customer, &tl, a.now())
	return nil
}

// writeTimeline prints the timeline as a table, then the state.
func writeTimeline(w io.Writer, customer string, tl *timeline, now time.Time) {
	if len(tl.Events) == 0 {
		fmt.Fprintf(w, "%s has no events", cell(customer))
		if tl.Next == "" {
			fmt.Fprintln(w, ".")
		} else {
			fmt.Fprintln(w, " on this page.")
		}
	} else {
		fmt.Fprintf(w, "%s: %s, newest first\n\n", cell(customer), plural(len(tl.Events), "event", "events"))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "AT (UTC)\tTYPE\tCHANNEL\tBY\tDETAIL\tID")
		for i := range tl.Events {
			e := &tl.Events[i]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("2006-01-02 15:04"), eventType(e),
				dash(eventChannel(e)), dash(eventBy(e)), dash(eventDetail(e)), cell(e.ID))
		}
		tw.Flush()
	}
	writeState(w, &tl.State, now)
	if tl.Next != "" {
		fmt.Fprintf(w, "\nOlder events: outreachctl contacts %s --before %s\n", cell(customer), cell(tl.Next))
	}
}

func eventType(e *contact.Event) string {
	if e.Type == contact.TypeContact && e.Direction == contact.Inbound {
		return "contact in"
	}
	return string(e.Type)
}

func eventChannel(e *contact.Event) string {
	if e.Channel == "" && (e.Type == contact.TypeOptOut || e.Type == contact.TypeOptIn) {
		return "all"
	}
	return string(e.Channel)
}

func eventBy(e *contact.Event) string {
	who := e.Agent
	if e.Type == contact.TypeComplaint {
		who = e.Owner
	}
	if e.Team != "" {
		if who == "" {
			return cell(e.Team)
		}
		who += " (" + e.Team + ")"
	}
	return cell(who)
}

// eventDetail is what an event is about, in a few words.
func eventDetail(e *contact.Event) string {
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	switch e.Type {
	case contact.TypeContact:
		add(e.Purpose)
		if e.Campaign != "" {
			add("campaign " + e.Campaign)
		}
		add(e.Product)
		if o := e.Offer; o != nil && o.Price != nil {
			s := "offer " + money(o.Price)
			if o.ExpiresAt != nil {
				s += " until " + o.ExpiresAt.UTC().Format("2006-01-02")
			}
			add(s)
		}
		if e.Outcome != "" {
			add("outcome " + strings.ReplaceAll(e.Outcome, "_", " "))
		}
	case contact.TypePurchase:
		add(e.Product)
		if e.Price != nil {
			add(money(e.Price))
		}
		if e.OrderID != "" {
			add("order " + e.OrderID)
		}
	case contact.TypeComplaint:
		add("case " + e.CaseID + " " + e.Status)
		add(clip(e.Summary, 50))
	case contact.TypeOptOut, contact.TypeOptIn:
		if e.Reason != "" {
			add(strconv.Quote(clip(e.Reason, 50)))
		}
	}
	return cell(strings.Join(parts, ", "))
}

// writeState prints the derived state, one line per fact.
// stateView is the state of a customer as the API shows it.
type stateView struct {
	Products       map[string]contact.Event          `json:"products"`
	OpenComplaints []contact.Event                   `json:"open_complaints"`
	OptOuts        map[contact.Channel]contact.Event `json:"opt_outs"`
	Offers         []contact.Event                   `json:"offers"`
	LastContacts   map[contact.Channel]contact.Event `json:"last_contacts"`
}

func writeState(w io.Writer, s *stateView, now time.Time) {
	fmt.Fprintln(w, "\nSTATE")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, sec := range []struct {
		title string
		items []string
	}{
		{"last contacts", lastContactItems(s, now)},
		{"purchases", purchaseItems(s)},
		{"open complaints", complaintItems(s, now)},
		{"opted out", optOutItems(s)},
		{"offers", offerItems(s, now)},
	} {
		items, title := sec.items, sec.title
		if len(items) == 0 {
			items = []string{"none"}
		}
		for i, it := range items {
			if i > 0 {
				title = ""
			}
			fmt.Fprintf(tw, "  %s\t%s\n", title, it)
		}
	}
	tw.Flush()
}

func lastContactItems(s *stateView, now time.Time) []string {
	var last []string
	for _, ch := range contact.Channels {
		if e, ok := s.LastContacts[ch]; ok {
			it := string(ch) + " " + relative(e.At, now)
			if by := eventBy(&e); by != "" {
				it += " by " + by
			}
			if e.Outcome != "" {
				it += ", outcome " + strings.ReplaceAll(e.Outcome, "_", " ")
			}
			last = append(last, it)
		}
	}
	return last
}

func purchaseItems(s *stateView) []string {
	var bought []string
	for _, p := range sortedKeys(s.Products) {
		e := s.Products[p]
		it := cell(p) + " on " + e.At.UTC().Format("2006-01-02")
		if e.OrderID != "" {
			it += " (order " + cell(e.OrderID) + ")"
		}
		bought = append(bought, it)
	}
	return bought
}

func complaintItems(s *stateView, now time.Time) []string {
	var open []string
	for _, e := range s.OpenComplaints {
		it := "case " + cell(e.CaseID)
		if e.Owner != "" {
			it += " (owner " + cell(e.Owner) + ")"
		}
		open = append(open, it+" since "+relative(e.At, now))
	}
	return open
}

// optOutItems lists an opt-out of every channel, which shows on each, once.
func optOutItems(s *stateView) []string {
	var opted []string
	seen := map[string]bool{}
	for _, ch := range contact.Channels {
		e, ok := s.OptOuts[ch]
		if !ok || seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		it := eventChannel(&e) + " since " + e.At.UTC().Format("2006-01-02")
		if e.Reason != "" {
			it += ": " + cell(strconv.Quote(clip(e.Reason, 50)))
		}
		opted = append(opted, it)
	}
	return opted
}

func offerItems(s *stateView, now time.Time) []string {
	var offers []string
	for _, e := range s.Offers {
		if e.Offer == nil || e.Offer.Price == nil {
			continue
		}
		it := cell(e.Product) + " at " + money(e.Offer.Price)
		if e.Channel != "" {
			it += " by " + string(e.Channel)
		}
		it += " " + relative(e.At, now)
		if x := e.Offer.ExpiresAt; x != nil {
			if x.Before(now) {
				it += ", expired " + x.UTC().Format("2006-01-02")
			} else {
				it += ", valid until " + x.UTC().Format("2006-01-02")
			}
		}
		offers = append(offers, it)
	}
	return offers
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n characters.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
