package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) suppressCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suppress",
		Short: "Manage suppression (do-not-call) lists",
		Long: `Manage suppression (do-not-call) lists: named lists of customer ids and
phone numbers, each with a reason and an optional expiry. The pre-dial check
and the scrub answer do_not_call for every entry in force. Needs a key with
the marketing role.`,
		Args: cobra.ArbitraryArgs,
		RunE: a.group,
	}
	cmd.AddCommand(a.suppressUploadCommand("put"), a.suppressUploadCommand("add"),
		a.suppressGetCommand(), a.suppressDeleteCommand())
	return cmd
}

const suppressUploadLong = `%s

The file is CSV with a header row and the columns customer_id, phone, reason
and expires_at (RFC 3339; empty: never); each row needs a customer_id or a
phone, and a row with both makes two entries. Phone numbers are normalised
to E.164 by the server. The upload is all or nothing: the first bad row
stops it with an error naming its line, and the list stays as it was. Rows
whose expires_at has passed are left out. The file is streamed ("-" reads
stdin), with progress on stderr; what the server wrote is printed on stdout.`

func (a *app) suppressUploadCommand(verb string) *cobra.Command {
	method, short := "PUT", "Replace a suppression list with the entries of a CSV file"
	if verb == "add" {
		method, short = "POST", "Add the entries of a CSV file to a suppression list"
	}
	var reason string
	cmd := &cobra.Command{
		Use:     verb + " LIST FILE.csv",
		Short:   short,
		Long:    fmt.Sprintf(suppressUploadLong, short+" ("+method+" /v1/suppressions/LIST)."),
		Example: fmt.Sprintf("  outreachctl suppress %s internal-dnc dnc.csv --reason \"asked not to be called\"", verb),
		Args:    args("LIST", "FILE.csv"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.suppressUpload(cmd.Context(), method, "suppress "+verb, args[0], args[1], reason)
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "the reason of rows that give none")
	return cmd
}

func (a *app) suppressUpload(ctx context.Context, method, label, list, name, reason string) error {
	in, size, err := a.openInput(name)
	if err != nil {
		return err
	}
	defer in.Close()
	var q url.Values
	if reason != "" {
		q = url.Values{"reason": {reason}}
	}
	p := a.newProgress(label, "", a.sending(name, size), size)
	resp, err := a.client.send(ctx, request{method: method, path: "/v1/suppressions/" + url.PathEscape(list), query: q,
		body: p.reader(in), size: size, contentType: "text/csv", accept: "application/json"})
	if err != nil {
		p.abort()
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse))
	if err != nil {
		p.abort()
		return fmt.Errorf("reading the answer: %w", err)
	}
	p.finish()
	var res struct {
		List    string   `json:"list"`
		Rows    *int64   `json:"rows"`
		Entries *int64   `json:"entries"`
		Expired int64    `json:"expired"`
		Ignored []string `json:"ignored_columns"`
	}
	if json.Unmarshal(body, &res) != nil || res.Rows == nil || res.Entries == nil {
		fmt.Fprintf(a.stdout, "%s %s: done\n", label, cell(list))
		writeAnswer(a.stdout, body)
		return nil
	}
	fmt.Fprintf(a.stdout, "%s %s: %s rows read, %s entries written", label, cell(list), commas(*res.Rows), commas(*res.Entries))
	if res.Expired > 0 {
		fmt.Fprintf(a.stdout, ", %s expired rows left out", commas(res.Expired))
	}
	fmt.Fprintln(a.stdout)
	if len(res.Ignored) > 0 {
		fmt.Fprintf(a.stdout, "ignored columns: %s\n", cell(strings.Join(res.Ignored, ", ")))
	}
	return nil
}

func (a *app) suppressGetCommand() *cobra.Command {
	var customer, phone string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get LIST [--customer-id ID | --phone NUMBER]",
		Short: "Look up one entry of a suppression list, or its size",
		Long: `Look up one entry of a suppression list, by customer id or by phone number,
or without either print how many entries the list holds
(GET /v1/suppressions/LIST). An entry that is not on the list is a failed
request: exit code 1.`,
		Example: "  outreachctl suppress get internal-dnc --phone +4791234567\n  outreachctl suppress get internal-dnc",
		Args:    args("LIST"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			if customer != "" && phone != "" {
				return usagef("give --customer-id or --phone, not both")
			}
			q := url.Values{}
			if customer != "" {
				q.Set("customer_id", customer)
			}
			if phone != "" {
				q.Set("phone", phone)
			}
			var e suppressionEntry
			body, err := a.client.call(cmd.Context(), "GET", "/v1/suppressions/"+url.PathEscape(args[0]), q, nil, &e)
			if err != nil {
				return err
			}
			if asJSON {
				writeJSON(a.stdout, body)
				return nil
			}
			e.write(a.stdout, args[0], a.now())
			return nil
		}),
	}
	cmd.Flags().StringVar(&customer, "customer-id", "", "the customer id to look up")
	cmd.Flags().StringVar(&phone, "phone", "", "the phone number to look up")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON answer")
	return cmd
}

func (a *app) suppressDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "delete LIST ENTRY",
		Short:   "Remove one entry from a suppression list",
		Long:    "Remove one entry, a customer id or a phone number, from a suppression list\n(DELETE /v1/suppressions/LIST/ENTRY).",
		Example: "  outreachctl suppress delete internal-dnc c42",
		Args:    args("LIST", "ENTRY"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			path := "/v1/suppressions/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1])
			if _, err := a.client.call(cmd.Context(), "DELETE", path, nil, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "removed %s from %s\n", cell(args[1]), cell(args[0]))
			return nil
		}),
	}
}

// suppressionEntry is the answer of GET /v1/suppressions/LIST: an entry,
// or the list's size.
type suppressionEntry struct {
	Entries    *int64     `json:"entries"`
	CustomerID string     `json:"customer_id"`
	Phone      string     `json:"phone"`
	Reason     string     `json:"reason"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Expired    bool       `json:"expired"`
}

// write prints e: "internal-dnc holds customer c1: \"asked us\"; never expires".
func (e *suppressionEntry) write(w io.Writer, list string, now time.Time) {
	if e.Entries != nil {
		fmt.Fprintf(w, "%s holds %s\n", cell(list), plural(int(*e.Entries), "entry", "entries"))
		return
	}
	who := "customer " + e.CustomerID
	if e.Phone != "" {
		who = "phone " + e.Phone
	}
	fmt.Fprintf(w, "%s holds %s", cell(list), cell(who))
	if e.Reason != "" {
		fmt.Fprintf(w, ": %s", cell(strconv.Quote(e.Reason)))
	}
	switch {
	case e.ExpiresAt == nil:
		fmt.Fprintln(w, "; never expires")
	case e.Expired:
		fmt.Fprintf(w, "; expired %s, so no longer in force\n", clock(*e.ExpiresAt, now))
	default:
		fmt.Fprintf(w, "; expires %s\n", clock(*e.ExpiresAt, now))
	}
}

// writeAnswer prints a JSON answer indented, and anything else as text.
func writeAnswer(w io.Writer, body []byte) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return
	}
	writeJSON(w, body)
}
