package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

const auditLong = `Print CUSTOMER's decisions from the audit trail, newest first: every live
check (when, by whom, about what, and what it answered and why) and every
erasure. The server reads them back from the decisions topic, from the
customer's partition only (GET /v1/customers/{id}/decisions). Needs a key
with the agent role.`

func (a *app) auditCommand() *cobra.Command {
	var since string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "audit CUSTOMER",
		Short:   "Show a customer's decisions from the audit trail",
		Long:    auditLong,
		Example: "  outreachctl audit c42\n  outreachctl audit c42 --since 7d --limit 200",
		Args:    args("CUSTOMER"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.audit(cmd.Context(), args[0], since, limit, asJSON)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "24h", "how far back, such as 24h or 7d (at most 90d)")
	f.IntVar(&limit, "limit", 50, "most decisions to show, 1 to 500")
	f.BoolVar(&asJSON, "json", false, "print the server's JSON answer")
	return cmd
}

func (a *app) audit(ctx context.Context, customer, since string, limit int, asJSON bool) error {
	if err := contact.ValidCustomerID(customer); err != nil {
		return usagef("CUSTOMER %s", err.(*contact.Error).Message)
	}
	if d, err := dedupe.ParseDuration(since); err != nil || d <= 0 {
		return usagef("--since must be a duration such as 24h or 7d; got %q", since)
	}
	if limit < 1 || limit > 500 {
		return usagef("--limit must be from 1 to 500; got %d", limit)
	}
	var ans struct {
		Decisions []dedupe.Record `json:"decisions"`
		Partial   bool            `json:"partial"`
	}
	q := url.Values{"since": {since}, "limit": {strconv.Itoa(limit)}}
	body, err := a.client.call(ctx, "GET", "/v1/customers/"+url.PathEscape(customer)+"/decisions", q, nil, &ans)
	if err != nil {
		return err
	}
	if asJSON {
		writeJSON(a.stdout, body)
		return nil
	}
	writeDecisions(a.stdout, ans.Decisions, a.now)
	if ans.Partial {
		fmt.Fprintln(a.stdout, "\nThe trail was read only in part (it is long); narrow --since to see all of it.")
	}
	return nil
}

// writeDecisions prints records as a table, newest first.
func writeDecisions(w io.Writer, recs []dedupe.Record, now func() time.Time) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "No decisions recorded in that time.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tBY\tCHECK\tANSWER\tREASONS")
	for _, r := range recs {
		by := dash(r.Role)
		if r.KeyID != "" {
			by += " (key " + r.KeyID + ")"
		}
		what, answer, reasons := "-", "blocked", recordReasons(r.Reasons)
		switch {
		case r.Kind == dedupe.RecordErasure:
			what, answer = "erasure", "erased"
		case r.Request != nil:
			what = string(r.Request.Channel) + " " + r.Request.Purpose
			if r.Request.Campaign != "" {
				what += ", campaign " + r.Request.Campaign
			}
			if r.Request.Agent != "" {
				what += ", agent " + r.Request.Agent
			}
		}
		if r.Kind == dedupe.RecordCheck && r.Allowed {
			answer = "allowed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", clock(r.Time, now()), cell(by), cell(what), answer, dash(reasons))
	}
	tw.Flush()
}

func recordReasons(rs []dedupe.RecordReason) string {
	var s []string
	for _, x := range rs {
		code := x.Code
		if x.Warning {
			code = "~" + code
		}
		if len(x.EventIDs) > 0 {
			code += " (" + strings.Join(x.EventIDs, ",") + ")"
		}
		s = append(s, code)
	}
	return strings.Join(s, ", ")
}

const forgetLong = `Erase CUSTOMER (DELETE /v1/customers/{id}): their history, their state, their
claim and their entries on suppression lists go, and a replay of the events
topic will not bring them back. Kept on purpose, bare: the opt-outs in force
and the do-not-call entries, since erasing them would make the customer
callable again. It asks you to type the customer id to confirm, unless
--yes is given. Needs a key with the admin role.`

func (a *app) forgetCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "forget CUSTOMER",
		Short:   "Erase a customer",
		Long:    forgetLong,
		Example: "  outreachctl forget c42\n  outreachctl forget c42 --yes",
		Args:    args("CUSTOMER"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.forget(cmd.Context(), args[0], yes)
		}),
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (for scripts)")
	return cmd
}

var errNotConfirmed = errors.New("not confirmed: nothing was erased")

func (a *app) forget(ctx context.Context, customer string, yes bool) error {
	if err := contact.ValidCustomerID(customer); err != nil {
		return usagef("CUSTOMER %s", err.(*contact.Error).Message)
	}
	if !yes {
		fmt.Fprintf(a.stderr, "Erase customer %s? Their history cannot be brought back.\nType the customer id to confirm: ", cell(customer))
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		if strings.TrimSpace(line) != customer {
			return errNotConfirmed
		}
	}
	var ans struct {
		EventID string `json:"event_id"`
	}
	if _, err := a.client.call(ctx, "DELETE", "/v1/customers/"+url.PathEscape(customer), nil, nil, &ans); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "customer %s: erasure written (event %s); it applies within seconds\n", cell(customer), cell(ans.EventID))
	return nil
}
