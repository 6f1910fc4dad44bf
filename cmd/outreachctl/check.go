package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // to check --timezone whatever the host has

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

type checkOptions struct {
	channel, purpose, campaign, agent string
	product, offerID, currency        string
	price, phone, timezone, at        string
	claim, exitCode, json             bool
}

const checkLong = `Ask POST /v1/check whether CUSTOMER may be contacted now, on --channel,
about an offer, and print the decision with every reason against it: the
sentence an agent can read aloud and the evidence (which event, who, when,
and when the reason lapses). Warnings are shown and do not block.

A "not allowed" answer is a successful check: the exit code is 0 unless
--exit-code is given, which makes it 3, for dialer scripts:

  outreachctl check c42 --channel call --exit-code && dial c42

With --claim an allowed check also takes an exclusive claim on the customer
(roles dialer and admin), and prints its token.`

const checkExample = `  outreachctl check c42 --channel call
  outreachctl check c42 --channel call --product fiber-500 --price 45 --currency EUR --agent b.lee --claim
  outreachctl check c42 --channel sms --purpose service --timezone Europe/Oslo --json`

func (a *app) checkCommand() *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:     "check CUSTOMER --channel CHANNEL",
		Short:   "Check whether a customer may be contacted now, and why not",
		Long:    checkLong,
		Example: checkExample,
		Args:    args("CUSTOMER"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.check(cmd.Context(), args[0], &o, cmd.Flags())
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.channel, "channel", "", "channel of the contact: call, sms, email, mail, visit or chat (required)")
	f.StringVar(&o.purpose, "purpose", "", "purpose: sales (the default), service, recovery, collections, survey or info")
	f.StringVar(&o.campaign, "campaign", "", "campaign, for its policy overrides")
	f.StringVar(&o.agent, "agent", "", "who would make the contact")
	f.StringVar(&o.product, "product", "", "product offered")
	f.StringVar(&o.price, "price", "", "price offered, such as 45.90")
	f.StringVar(&o.currency, "currency", "", "currency of --price, ISO 4217 (EUR)")
	f.StringVar(&o.offerID, "offer-id", "", "id of the offer")
	f.StringVar(&o.phone, "phone", "", "the number to be called, for suppression lists keyed by number")
	f.StringVar(&o.timezone, "timezone", "", "the customer's IANA time zone (Europe/Oslo); enables quiet hours")
	f.StringVar(&o.at, "at", "", "when the contact would happen, RFC 3339 (default now)")
	f.BoolVar(&o.claim, "claim", false, "take an exclusive claim on the customer if allowed")
	f.BoolVar(&o.exitCode, "exit-code", false, "exit with 3 when the contact is not allowed")
	f.BoolVar(&o.json, "json", false, "print the server's JSON answer")
	cmd.MarkFlagRequired("channel")
	return cmd
}

// flagOfField names the flag behind a field of a check request.
var flagOfField = map[string]string{
	"customer_id": "CUSTOMER", "offer.price": "--price", "offer.currency": "--currency", "offer.id": "--offer-id",
}

// request builds the check request, checking it as the server would so that
// a mistake is a usage error that names the flag.
func (o *checkOptions) request(customer string, flags *pflag.FlagSet, now time.Time) (*dedupe.Request, error) {
	req := &dedupe.Request{
		CustomerID: customer, Channel: contact.Channel(o.channel), Purpose: o.purpose, Campaign: o.campaign,
		Agent: o.agent, Product: o.product, Phone: o.phone, Timezone: o.timezone, Claim: o.claim,
	}
	if o.price != "" || o.currency != "" || o.offerID != "" {
		req.Offer = contact.NewOffer(o.offerID, o.price, o.currency)
	}
	if o.at != "" {
		t, err := contact.ParseTime("at", o.at)
		if err != nil {
			return nil, flagError(err)
		}
		req.At = t
	}
	probe := *req
	if req.Offer != nil {
		offer := *req.Offer
		probe.Offer = &offer
	}
	// The server's default currency may differ; it reads the price again.
	if err := probe.Normalize(now, contact.Defaults{}); err != nil {
		var ce *contact.Error
		if errors.As(err, &ce) {
			name, ok := flagOfField[ce.Field]
			if !ok {
				name = "--" + ce.Field
			}
			return nil, usagef("%s %s", name, ce.Message)
		}
		return nil, &usageError{err: err}
	}
	return req, nil
}

func (a *app) check(ctx context.Context, customer string, o *checkOptions, flags *pflag.FlagSet) error {
	req, err := o.request(customer, flags, a.now())
	if err != nil {
		return err
	}
	var res dedupe.Result
	body, err := a.client.call(ctx, "POST", "/v1/check", nil, req, &res)
	if err != nil {
		return err
	}
	if o.json {
		writeJSON(a.stdout, body)
	} else {
		writeDecision(a.stdout, req, &res, a.now())
	}
	if o.exitCode && !res.Allowed {
		return exitCode(exitNotAllowed)
	}
	return nil
}

// writeJSON writes a JSON answer indented.
func writeJSON(w io.Writer, body []byte) {
	var b bytes.Buffer
	if json.Indent(&b, body, "", "  ") != nil {
		w.Write(body)
		return
	}
	b.WriteByte('\n')
	w.Write(b.Bytes())
}

// writeDecision prints a check's answer for people:
//
//	NOT ALLOWED: do not contact c42 by call now (purpose sales)
//
//	  recent_contact: called by a.jones (retention) 2h ago, outcome voicemail
//	      evidence: event e1 at 2026-11-23 12:00 UTC (2h ago), agent a.jones, team retention, channel call
//	      lapses:   2026-11-26 12:00 UTC (in 2d 22h)
func writeDecision(w io.Writer, req *dedupe.Request, res *dedupe.Result, now time.Time) {
	purpose := req.Purpose
	if purpose == "" {
		purpose = dedupe.DefaultPurpose
	}
	when := "now"
	if !req.At.IsZero() {
		when = "at " + clock(req.At, now)
	}
	blocking := 0
	for _, r := range res.Reasons {
		if !r.Warning {
			blocking++
		}
	}
	if res.Allowed {
		fmt.Fprintf(w, "ALLOWED: %s may be contacted by %s %s (purpose %s)\n", cell(res.CustomerID), req.Channel, when, purpose)
	} else {
		fmt.Fprintf(w, "NOT ALLOWED: do not contact %s by %s %s (purpose %s): %s\n", cell(res.CustomerID), req.Channel, when, purpose,
			plural(blocking, "reason", "reasons"))
	}
	for _, r := range res.Reasons {
		fmt.Fprintln(w)
		code := r.Code
		if r.Warning {
			code += " (warning; does not block)"
		}
		fmt.Fprintf(w, "  %s: %s\n", code, cell(r.Message))
		if ev := evidence(&r, now); ev != "" {
			fmt.Fprintf(w, "      evidence: %s\n", ev)
		}
		if r.ExpiresAt != nil {
			fmt.Fprintf(w, "      lapses:   %s\n", clock(*r.ExpiresAt, now))
		}
	}
	if c := res.Claim; c != nil {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  claim: token %s, yours until %s\n", cell(c.Token), clock(c.ExpiresAt, now))
		fmt.Fprintf(w, "      release it with DELETE /v1/claims/TOKEN, or send the contact event with \"claim\": TOKEN\n")
	}
}

// evidence lists a reason's evidence fields.
func evidence(r *dedupe.Reason, now time.Time) string {
	var parts []string
	addf := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	switch {
	case r.EventID != "" && r.At != nil:
		addf("event %s at %s", cell(r.EventID), clock(*r.At, now))
	case r.EventID != "":
		addf("event %s", cell(r.EventID))
	case r.At != nil:
		addf("at %s", clock(*r.At, now))
	}
	for _, f := range [...]struct{ name, value string }{
		{"agent", r.Agent}, {"team", r.Team}, {"channel", string(r.Channel)}, {"campaign", r.Campaign},
		{"product", r.Product}, {"case", r.CaseID}, {"owner", r.Owner}, {"list", r.List},
	} {
		if f.value != "" {
			addf("%s %s", f.name, cell(f.value))
		}
	}
	if o := r.Offer; o != nil {
		parts = append(parts, offerText(o, now))
	}
	if r.Count > 0 {
		addf("%d contacts", r.Count)
	}
	return strings.Join(parts, ", ")
}

// offerText: "offer o-39 at 39.00 EUR valid until 2026-12-01 10:00 UTC (in 20d)".
func offerText(o *contact.Offer, now time.Time) string {
	s := "offer"
	if o.ID != "" {
		s += " " + cell(o.ID)
	}
	if o.Price != nil {
		s += " at " + money(o.Price)
	}
	if o.ExpiresAt != nil {
		s += " valid until " + clock(*o.ExpiresAt, now)
	}
	return s
}

func money(p *contact.Money) string { return cell(p.String()) }

// clock writes t in UTC with how far it is from now: "2026-11-23 12:00 UTC
// (2h ago)", "2026-11-26 12:00 UTC (in 2d 22h)".
func clock(t, now time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + relative(t, now) + ")"
}

// relative writes how far t is from now: "2h ago", "in 3d 4h", "just now".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	d = d.Round(time.Minute)
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		s = strconv.Itoa(int(d/time.Hour)) + "h"
		if m := int(d%time.Hour) / int(time.Minute); m > 0 && d < 10*time.Hour {
			s += " " + strconv.Itoa(m) + "m"
		}
	default:
		days := int(d / (24 * time.Hour))
		s = strconv.Itoa(days) + "d"
		if h := int(d%(24*time.Hour)) / int(time.Hour); h > 0 && days < 10 {
			s += " " + strconv.Itoa(h) + "h"
		}
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// cell makes text from the server safe to print: control characters,
// which could drive the terminal, are replaced.
func cell(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }
