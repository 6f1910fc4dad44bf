package http

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
)

// scrubWriter reads the rows of a scrub from its CSV body and writes their
// verdicts back, as CSV or as a summary.
type scrubWriter struct {
	idle time.Duration // how long to wait for the client to send or take a batch
	req  *scrubRequest
	cr   *csvReader
	rc   *http.ResponseController
	c    echo.Context

	sum     scrubSummary
	out     *csv.Writer
	keep    []int // the input columns written out
	row     []string
	started bool // the response has begun
	stopped bool // the scrub ended early, after the response had begun
}

// errStopped ends a scrub whose answer has already said why it stopped.
var errStopped = errors.New("http: scrub stopped")

// reader returns the function the check service reads rows with. The
// body's progressReader cuts a client that sends nothing for the idle time.
func (w *scrubWriter) reader(cols map[string]int) func() (check.Row, error) {
	get := func(rec []string, col string) string {
		if i, ok := cols[col]; ok {
			return spreadsheetValue(rec[i]) // as an earlier scrub had it
		}
		return ""
	}
	return func() (check.Row, error) {
		rec, err := w.cr.Read()
		if err != nil {
			return check.Row{}, err
		}
		return check.Row{
			CustomerID: get(rec, "customer_id"), Channel: get(rec, "channel"), Purpose: get(rec, "purpose"),
			Product: get(rec, "product"), Price: get(rec, "price"), Currency: get(rec, "currency"),
			Phone: get(rec, "phone"), Timezone: get(rec, "timezone"), Campaign: get(rec, "campaign"),
			Record: rec,
		}, nil
	}
}

// emit tallies a checked batch and, for a CSV answer, writes it; end is the
// error that ended the list after it.
func (w *scrubWriter) emit(vs []check.Verdict, end error) error {
	if code := contact.ErrorCode(end); end != nil && code != contact.EInvalid && code != contact.ETimeout {
		// The body could not be read: the client went away.
		return w.stop(bodyError(end), "")
	}
	if end != nil && !w.started {
		return end // a 400 naming the line, before anything was written
	}
	if !w.req.summary {
		if err := w.begin(); err != nil {
			return err
		}
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	}
	for i := range vs {
		v := &vs[i]
		w.sum.Rows++
		var allowed bool
		var reasons, detail string
		if v.Invalid != nil {
			w.sum.Invalid++
			reasons, detail = contact.EInvalid, rowDetail(v.Invalid)
		} else {
			allowed = v.Result.Allowed
			if allowed {
				w.sum.Allowed++
			}
			reasons, detail = w.reasons(&v.Result)
		}
		if w.req.summary || (w.req.onlyAllowed && !allowed) {
			continue
		}
		if err := w.writeRow(v.Row.Record, allowed, reasons, detail); err != nil {
			return w.stop(nil, "")
		}
	}
	if end != nil {
		return w.stop(end, errorMessage(end))
	}
	if w.req.summary {
		return nil
	}
	w.out.Flush()
	if err := w.out.Error(); err != nil {
		return w.stop(nil, "")
	}
	if err := w.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return w.stop(nil, "")
	}
	return nil
}

// finish ends the answer after the scrub returned err.
func (w *scrubWriter) finish(err error) error {
	switch {
	case errors.Is(err, errStopped):
		return nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return w.stop(err, "")
	case contact.ErrorCode(err) == contact.EUnavailable:
		return w.stop(err, "the store is unavailable")
	case err != nil:
		return w.stop(err, errorMessage(err))
	case w.stopped:
		return nil
	case w.req.summary:
		// The handler writes it next.
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.idle))
		return nil
	}
	if err := w.begin(); err != nil {
		return err
	}
	w.out.Flush()
	w.c.Response().Header().Set(ScrubStatusTrailer, "ok")
	return w.out.Error()
}

// rowDetail is the detail of an invalid row: "field: message", with the
// request's field names turned into the list's column names.
func rowDetail(err error) string {
	var ce *contact.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	field := strings.TrimPrefix(ce.Field, "offer.")
	if field == "" {
		return ce.Message
	}
	return field + ": " + ce.Message
}

// errorMessage is the message of err that a client may see.
func errorMessage(err error) string {
	var ce *contact.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return "internal error"
}

// reasons returns the codes of the blocking reasons, joined with |, and the
// first one's sentence; warnings are left out. It counts them too.
func (w *scrubWriter) reasons(res *dedupe.Result) (string, string) {
	var codes []string
	var detail string
	for i := range res.Reasons {
		r := &res.Reasons[i]
		if r.Warning {
			continue
		}
		if detail == "" {
			detail = r.Message
		}
		if !slices.Contains(codes, r.Code) {
			codes = append(codes, r.Code)
			w.sum.Blocked[r.Code]++
		}
	}
	return strings.Join(codes, "|"), detail
}

// begin starts the CSV answer: the status, the trailer's declaration, and
// the header row: the input's columns, except a previous scrub's allowed,
// reasons and detail, then the new ones.
func (w *scrubWriter) begin() error {
	if w.started {
		return nil
	}
	w.started = true
	h := w.c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set("Trailer", ScrubStatusTrailer)
	w.c.Response().WriteHeader(http.StatusOK)
	if w.cr.bom {
		if _, err := w.c.Response().Write(utf8BOM); err != nil {
			return err
		}
	}
	w.out = csv.NewWriter(w.c.Response())
	for i, name := range w.cr.header {
		if !slices.Contains(scrubOut, strings.ToLower(strings.TrimSpace(name))) {
			w.keep = append(w.keep, i)
		}
	}
	w.row = make([]string, 0, len(w.keep)+len(scrubOut))
	header := make([]string, 0, cap(w.row))
	for _, i := range w.keep {
		header = append(header, w.cr.header[i])
	}
	return w.write(append(header, scrubOut...))
}

func (w *scrubWriter) writeRow(rec []string, allowed bool, reasons, detail string) error {
	w.row = w.row[:0]
	for _, i := range w.keep {
		w.row = append(w.row, rec[i])
	}
	w.row = append(w.row, strconv.FormatBool(allowed), reasons, detail)
	return w.write(w.row)
}

// write writes row, which it may change: each cell escaped for
// spreadsheets, unless the scrub was asked for raw=true.
func (w *scrubWriter) write(row []string) error {
	if !w.req.raw {
		for i, v := range row {
			row[i] = spreadsheetSafe(v)
		}
	}
	return w.out.Write(row)
}

// stop ends a scrub early with err. Before the answer has begun, err is the
// answer. After, the status is sent already: the CSV ends with an error row
// saying why (unless why is "", when the client is gone), the trailer says
// so, and stop returns errStopped.
func (w *scrubWriter) stop(err error, why string) error {
	if !w.started {
		if err == nil || errors.Is(err, io.EOF) {
			err = contact.Invalid("", "the request was canceled")
		}
		return err
	}
	if w.stopped {
		return errStopped
	}
	w.stopped = true
	if why != "" {
		msg := "the scrub stopped here: " + why + "; the rows above were checked, the rest of the list was not"
		rec := make([]string, len(w.cr.header))
		_ = w.writeRow(rec, false, ScrubErrorCode, msg)
		w.out.Flush()
		w.c.Response().Header().Set(ScrubStatusTrailer, "error: "+why)
	}
	return errStopped
}
