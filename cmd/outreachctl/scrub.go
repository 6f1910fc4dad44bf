package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/outreach/outreach/contact"
)

type scrubOptions struct {
	output      string
	channel     string
	purpose     string
	product     string
	price       string
	currency    string
	campaign    string
	policy      string // a preset's name
	policyFile  string // an inline policy
	at          string
	onlyAllowed bool
	summaryOnly bool
	raw         bool
	idle        time.Duration
}

const scrubLong = `Scrub a call list: upload it to POST /v1/lists/scrub and get it back with
every row marked allowed or not, and why.

The list is CSV with a header row and a customer_id column. Optional columns
channel, purpose, product, price, phone, timezone and campaign override the
flags row by row. The answer is every input column unchanged, then allowed
(true/false), reasons (codes joined by |) and detail (the first reason's
sentence). A cell that a spreadsheet would run as a formula (one beginning
with =, @, a tab, or + or - but for numbers and phone numbers) comes back
with a ' before it; --raw turns that off, for programs that read the list. It is written to stdout, or to the -o file, which is written only
if the scrub completes (a failed scrub leaves no partial file).

The file is streamed: progress (rows done, rows/s, and the ETA from the bytes
sent) goes to stderr. At the end a summary table by reason is printed: to
stdout when -o is given, else to stderr. A scrub is a dry run of the policy
at --at: it takes no claims. Needs a key with the marketing role.

What if: --policy NAME scrubs under one of the server's policy presets, and
--policy-file FILE.yaml under the policy in that file (the format of
deployments/policy.yaml), without changing the policy in force.

A scrub that the server stops after its answer has begun (a broken row
further down, the store going down) ends with a row whose reasons is
"error"; outreachctl then reports the error and exits with 1, and -o is not
written.`

const scrubExample = `  outreachctl scrub autumn.csv -o autumn-scrubbed.csv --channel call --product fiber-500 --price 49
  outreachctl scrub autumn.csv --channel call --only-allowed > to-call.csv
  outreachctl scrub autumn.csv --channel call --summary-only
  outreachctl scrub autumn.csv --channel call --summary-only --policy-file stricter.yaml`

func (a *app) scrubCommand() *cobra.Command {
	var o scrubOptions
	cmd := &cobra.Command{
		Use:     "scrub LIST.csv",
		Short:   "Scrub a call list: mark each row that must not be called, and why",
		Long:    scrubLong,
		Example: scrubExample,
		Args:    args("LIST.csv"),
		RunE: a.runE(func(cmd *cobra.Command, args []string) error {
			return a.scrub(cmd.Context(), args[0], &o, cmd.Flags())
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "write the scrubbed list to this file instead of stdout")
	f.StringVar(&o.channel, "channel", "", "channel of the calls: call (the default), sms, email, mail, visit or chat")
	f.StringVar(&o.purpose, "purpose", "", "purpose: sales (the default), service, recovery, collections, survey or info")
	f.StringVar(&o.product, "product", "", "product offered")
	f.StringVar(&o.price, "price", "", "price offered, such as 49.90, in --currency or the server's default currency")
	f.StringVar(&o.currency, "currency", "", "currency of --price, ISO 4217 (EUR)")
	f.StringVar(&o.campaign, "campaign", "", "campaign, for its policy overrides")
	f.StringVar(&o.at, "at", "", "when the calls will be made, RFC 3339 (default now)")
	f.StringVar(&o.policy, "policy", "", "what if: scrub under the server's policy preset of this name")
	f.StringVar(&o.policyFile, "policy-file", "", "what if: scrub under the policy in this YAML file")
	f.BoolVar(&o.onlyAllowed, "only-allowed", false, "return only the rows that may be called")
	f.BoolVar(&o.summaryOnly, "summary-only", false, "print only the summary table; no rows are returned")
	f.BoolVar(&o.raw, "raw", false, "return cells as they are, not escaped for spreadsheets (for programs)")
	f.DurationVar(&o.idle, "idle-timeout", 5*time.Minute, "give up when nothing is sent or received for this long (0: never)")
	return cmd
}

// query returns the scrub's query string, checking the flags.
func (o *scrubOptions) query(flags *pflag.FlagSet) (url.Values, error) {
	q := url.Values{}
	if o.channel != "" {
		if err := contact.ValidChannel("channel", contact.Channel(o.channel)); err != nil {
			return nil, flagError(err)
		}
		q.Set("channel", o.channel)
	}
	if o.purpose != "" {
		if !slices.Contains(contact.Purposes, o.purpose) {
			return nil, usagef("--purpose must be one of %s; got %q", strings.Join(contact.Purposes, ", "), o.purpose)
		}
		q.Set("purpose", o.purpose)
	}
	if o.product != "" {
		q.Set("product", o.product)
	}
	if o.price != "" {
		// The server reads it in its own default currency; a local check
		// with EUR's two decimals catches what is not an amount at all.
		if _, err := contact.ParseMoney("price", o.price, "currency", "EUR"); err != nil && o.currency == "" {
			return nil, usagef("--price %s", err.(*contact.Error).Message)
		}
		q.Set("price", o.price)
	}
	if o.currency != "" {
		q.Set("currency", o.currency)
	}
	if o.policy != "" {
		q.Set("policy", o.policy)
	}
	if o.campaign != "" {
		q.Set("campaign", o.campaign)
	}
	if o.at != "" {
		if _, err := contact.ParseTime("at", o.at); err != nil {
			return nil, flagError(err)
		}
		q.Set("at", o.at)
	}
	if o.onlyAllowed {
		q.Set("only", "allowed")
	}
	if o.raw {
		q.Set("raw", "true")
	}
	switch {
	case o.policy != "" && o.policyFile != "":
		return nil, usagef("give --policy or --policy-file, not both")
	case o.summaryOnly && o.onlyAllowed:
		return nil, usagef("--summary-only and --only-allowed do not go together")
	case o.summaryOnly && o.output != "":
		return nil, usagef("--summary-only returns no rows to write to -o")
	case o.idle < 0:
		return nil, usagef("--idle-timeout must not be negative")
	}
	return q, nil
}

// flagError turns a validation error of the contact package into a usage
// error that names the flag.
func flagError(err error) error {
	var ce *contact.Error
	if errors.As(err, &ce) && ce.Field != "" {
		return usagef("--%s %s", strings.ReplaceAll(ce.Field, "_", "-"), ce.Message)
	}
	return &usageError{err: err}
}

func (a *app) scrub(ctx context.Context, name string, o *scrubOptions, flags *pflag.FlagSet) (err error) {
	q, err := o.query(flags)
	if err != nil {
		return err
	}
	policy, err := o.readPolicy()
	if err != nil {
		return err
	}
	in, size, err := a.openInput(name)
	if err != nil {
		return err
	}
	defer in.Close()

	var out *output
	if !o.summaryOnly {
		if out, err = createOutput(o.output, a.stdout); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				out.discard()
			}
		}()
	}

	unit := "rows"
	if o.summaryOnly {
		unit = "" // no rows come back until the end
	}
	p := a.newProgress("scrub", unit, a.sending(name, size), size)
	defer func() {
		if err != nil {
			p.abort()
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var received atomic.Int64
	stopWatch := watchIdle(ctx, cancel, o.idle, &p.sent, &received)
	defer stopWatch()
	// idleCause prefers the watchdog's reason to the cancellation it caused.
	idleCause := func(err error) error {
		if cause := context.Cause(ctx); cause != nil && errors.Is(cause, errIdle) {
			return cause
		}
		return err
	}

	resp, err := a.client.send(ctx, o.request(q, policy, p.reader(in), size))
	if err != nil {
		return idleCause(err)
	}
	defer resp.Body.Close()
	body := &countReader{r: resp.Body, n: &received}

	var sum *scrubSummary
	if o.summaryOnly {
		sum, err = readJSONSummary(body)
	} else {
		sum, err = copyScrubbed(out.w, body, p, o.onlyAllowed)
	}
	if err != nil {
		return idleCause(err)
	}
	if status := resp.Trailer.Get(scrubStatusTrailer); strings.HasPrefix(status, "error") {
		return fmt.Errorf("the scrub stopped early after %s rows: %s", commas(sum.rows), strings.TrimPrefix(strings.TrimPrefix(status, "error"), ": "))
	}
	if out != nil {
		if err := out.commit(); err != nil {
			return err
		}
	}
	p.finish()
	w := a.stderr // stdout carries the rows
	if (o.output != "" && o.output != "-") || o.summaryOnly {
		w = a.stdout
	}
	sum.write(w)
	return nil
}

// readPolicy reads the what-if policy of --policy-file, if any.
func (o *scrubOptions) readPolicy() ([]byte, error) {
	if o.policyFile == "" {
		return nil, nil
	}
	policy, err := os.ReadFile(o.policyFile)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--policy-file: %w", err)}
	}
	return policy, nil
}

// request is the scrub's request: the list as CSV, or behind the policy in
// a multipart form, answered in CSV or, with --summary-only, in JSON.
func (o *scrubOptions) request(q url.Values, policy []byte, list io.Reader, size int64) request {
	accept := "text/csv"
	if o.summaryOnly {
		accept = "application/json"
	}
	req := request{method: "POST", path: "/v1/lists/scrub", query: q,
		body: list, size: size, contentType: "text/csv", accept: accept}
	if policy != nil {
		req.body, req.contentType = multipartList(policy, req.body)
		req.size = -1
	}
	return req
}

// scrubStatusTrailer ends a streamed scrub: "ok", or "error: " and why the
// server stopped it after its answer had begun. scrubErrorCode is the
// reasons of the row that then ends the CSV, whose detail says why too.
const (
	scrubStatusTrailer = "X-Outreach-Scrub-Status"
	scrubErrorCode     = "error"
)

// multipartList returns the body of a what-if scrub: a multipart form with
// the policy part, then the list part streamed from list.
func multipartList(policy []byte, list io.Reader) (io.Reader, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		// Ends when the list is sent, or when the client closes pr.
		pw.CloseWithError(func() error {
			part, err := mw.CreateFormFile("policy", "policy.yaml")
			if err != nil {
				return err
			}
			if _, err := part.Write(policy); err != nil {
				return err
			}
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="list"; filename="list.csv"`)
			h.Set("Content-Type", "text/csv")
			if part, err = mw.CreatePart(h); err != nil {
				return err
			}
			if _, err := io.Copy(part, list); err != nil {
				return err
			}
			return mw.Close()
		}())
	}()
	return pr, mw.FormDataContentType()
}

// copyScrubbed copies the scrubbed CSV from r to w unchanged, and reads it
// on the way to count each row and its reasons.
func copyScrubbed(w io.Writer, r io.Reader, p *progress, onlyAllowed bool) (*scrubSummary, error) {
	cr := csv.NewReader(io.TeeReader(r, w))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the server's answer is empty; want CSV with a header row")
		}
		return nil, answerError(err, 0)
	}
	allowedCol, reasonsCol, detailCol := -1, -1, -1
	for i, h := range header {
		switch strings.TrimPrefix(h, "\uFEFF") {
		case "allowed":
			allowedCol = i
		case "reasons":
			reasonsCol = i
		case "detail":
			detailCol = i
		}
	}
	if allowedCol < 0 || reasonsCol < 0 {
		return nil, fmt.Errorf("the server's answer has no allowed and reasons columns; its header is %q", oneLine(strings.Join(header, ","), 200))
	}
	sum := newScrubSummary()
	sum.onlyAllowed = onlyAllowed
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return nil, answerError(err, sum.rows)
		}
		var allowed, reasons string
		if allowedCol < len(rec) {
			allowed = rec[allowedCol]
		}
		if reasonsCol < len(rec) {
			reasons = rec[reasonsCol]
		}
		if reasons == scrubErrorCode {
			detail := "no reason given"
			if detailCol >= 0 && detailCol < len(rec) && rec[detailCol] != "" {
				detail = rec[detailCol]
			}
			return sum, fmt.Errorf("the scrub stopped early after %s rows: %s", commas(sum.rows), cell(detail))
		}
		sum.add(allowed == "true", reasons)
		p.add(1)
	}
}

// answerError explains an error met while reading the scrubbed CSV.
func answerError(err error, rows int64) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("the server's answer is not valid CSV at its line %d: %v", pe.Line, pe.Err)
	}
	return fmt.Errorf("the answer broke off after %s rows: %w", commas(rows), err)
}

// readJSONSummary reads the answer of a scrub with Accept: application/json.
func readJSONSummary(r io.Reader) (*scrubSummary, error) {
	var j struct {
		Rows    int64            `json:"rows"`
		Allowed int64            `json:"allowed"`
		Blocked map[string]int64 `json:"blocked"`
		Invalid int64            `json:"invalid"`
		Policy  string           `json:"policy"`
	}
	if err := json.NewDecoder(io.LimitReader(r, maxJSONResponse)).Decode(&j); err != nil {
		return nil, fmt.Errorf("reading the summary: %w", err)
	}
	sum := newScrubSummary()
	sum.rows, sum.allowed, sum.invalid, sum.policy = j.Rows, j.Allowed, j.Invalid, j.Policy
	for code, n := range j.Blocked {
		sum.blocked[code] = n
	}
	if _, ok := sum.blocked["invalid"]; !ok && j.Invalid > 0 {
		sum.blocked["invalid"] = j.Invalid
	}
	return sum, nil
}

// output is where scrubbed rows go: stdout, or a temporary file next to
// the -o file that becomes it only when the scrub completes.
type output struct {
	w    *bufio.Writer
	file *os.File // nil for stdout
	name string
}

func createOutput(name string, stdout io.Writer) (*output, error) {
	if name == "" || name == "-" {
		return &output{w: bufio.NewWriterSize(stdout, 64<<10)}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".partial-*")
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("cannot write -o %s: %w", name, err)}
	}
	return &output{w: bufio.NewWriterSize(f, 64<<10), file: f, name: name}, nil
}

// commit flushes the rows and, for a file, moves it into place.
func (o *output) commit() error {
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("writing the scrubbed list: %w", err)
	}
	if o.file == nil {
		return nil
	}
	if err := o.file.Close(); err != nil {
		os.Remove(o.file.Name())
		return fmt.Errorf("writing %s: %w", o.name, err)
	}
	if err := os.Rename(o.file.Name(), o.name); err != nil {
		os.Remove(o.file.Name())
		return fmt.Errorf("writing %s: %w", o.name, err)
	}
	return nil
}

// discard drops a file that did not complete. Rows already written to
// stdout stay written; the buffered rest is dropped.
func (o *output) discard() {
	if o.file == nil {
		o.w.Reset(io.Discard)
		return
	}
	o.file.Close()
	os.Remove(o.file.Name())
}

// countReader counts the bytes read through it into n.
type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

var errIdle = errors.New("nothing was sent or received")

// watchIdle cancels ctx when none of counters moves for idle (0: never).
// It returns a function that stops watching.
func watchIdle(ctx context.Context, cancel context.CancelCauseFunc, idle time.Duration, counters ...*atomic.Int64) func() {
	if idle <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		sum := func() (n int64) {
			for _, c := range counters {
				n += c.Load()
			}
			return n
		}
		t := time.NewTicker(min(idle/4, time.Second))
		defer t.Stop()
		last, moved := sum(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				if n := sum(); n != last {
					last, moved = n, now
				} else if now.Sub(moved) >= idle {
					cancel(fmt.Errorf("%w for %v (--idle-timeout)", errIdle, idle))
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
