package http

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/outreach/outreach/contact"
)

// Limits of a list upload's rows, which keep a quote left open, or a row
// of many empty fields, from taking memory the size of the upload: a row
// may have MaxCSVColumns fields, and cost MaxCSVRecord bytes, each field
// counting CSVFieldCost bytes more than its text (what holding it costs).
const (
	MaxCSVRecord  = 64 << 10
	MaxCSVColumns = 512
	CSVFieldCost  = 16
)

var utf8BOM = []byte("\xef\xbb\xbf")

// csvReader reads an uploaded list: a header row, then rows with as many
// fields. It accepts a UTF-8 BOM and CRLF line ends, and bounds the length of
// a row. Errors in the CSV itself are EInvalid errors that name the line.
type csvReader struct {
	r      *csv.Reader
	lim    *rowLimit
	header []string
	bom    bool // the input started with a UTF-8 BOM
	line   int  // where the last row read starts
}

// newCSVReader reads the header row of body.
func newCSVReader(body io.Reader) (*csvReader, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	c := &csvReader{}
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
		c.bom = true
	}
	c.lim = newRowLimit(br)
	c.r = csv.NewReader(c.lim)
	header, err := c.Read()
	if errors.Is(err, io.EOF) {
		return nil, contact.Invalid("", "the list is empty; it needs a header row naming its columns")
	}
	if err != nil {
		return nil, err
	}
	if !utf8.ValidString(strings.Join(header, "")) {
		return nil, lineError(1, "the header must be valid UTF-8")
	}
	c.header = slices.Clone(header)
	return c, nil
}

// Read returns the next row, or io.EOF after the last. The row is the
// caller's to keep. A read error of the body is returned as is; a cell that
// is not valid UTF-8 is an EInvalid error naming its line and column.
func (c *csvReader) Read() ([]string, error) {
	rec, err := c.r.Read()
	if err == nil {
		c.line, _ = c.r.FieldPos(0)
		for i, v := range rec {
			if c.header != nil && !utf8.ValidString(v) {
				return nil, rowError(c.line, contact.Invalid(c.header[i], "must be valid UTF-8"))
			}
		}
		return rec, nil
	}
	var pe *csv.ParseError
	var le *rowLimitError
	switch {
	case errors.As(err, &pe):
		line := pe.StartLine
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return nil, lineError(line, "%d fields where the header has %d", len(rec), len(c.header))
		}
		msg := pe.Err.Error()
		if pe.Line != pe.StartLine {
			msg += fmt.Sprintf(" (the row starting on line %d is read up to line %d: is a quote left open?)", pe.StartLine, pe.Line)
		}
		return nil, lineError(line, "%s", msg)
	case errors.As(err, &le):
		return nil, le.err()
	case contact.ErrorCode(err) == contact.ETimeout: // a stalled upload
		var ce *contact.Error
		errors.As(err, &ce)
		return nil, &contact.Error{Code: ce.Code, Field: ce.Field, Message: fmt.Sprintf("line %d: %s", c.lim.start, ce.Message), Err: ce.Err}
	}
	return nil, err
}

// lineError is an EInvalid error about a line of an uploaded list.
func lineError(line int, format string, args ...any) *contact.Error {
	return &contact.Error{Code: contact.EInvalid, Field: "list", Message: fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, args...)}
}

// rowError is an EInvalid error about a value of the row at line.
func rowError(line int, err error) error {
	var ce *contact.Error
	if errors.As(err, &ce) && ce.Code == contact.EInvalid {
		msg := ce.Message
		if ce.Field != "" {
			msg = ce.Field + ": " + msg
		}
		return &contact.Error{Code: contact.EInvalid, Field: "list", Message: fmt.Sprintf("line %d: %s", line, msg)}
	}
	return err
}

// columns maps the known column names of a header, matched without regard
// to case or surrounding space, to their index. A known name given twice is
// an error; other columns are left to the caller.
func columns(header []string, known ...string) (map[string]int, []string, error) {
	idx := map[string]int{}
	var unknown []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(known, name) {
			unknown = append(unknown, h)
			continue
		}
		if _, dup := idx[name]; dup {
			return nil, nil, lineError(1, "the column %s appears twice", name)
		}
		idx[name] = i
	}
	return idx, unknown, nil
}

// rowLimit fails a read once a row of the CSV passing through breaks the
// limits, as it arrives: before the parser builds it. It follows quotes, so
// that separators and line ends inside a quoted field do not count.
type rowLimit struct {
	r      io.Reader
	err    *rowLimitError
	quoted bool
	fields int // of the current row
	cost   int // of the current row
	start  int // the line the current row starts on
	lines  int // line ends read
}

func newRowLimit(r io.Reader) *rowLimit {
	return &rowLimit{r: r, fields: 1, cost: CSVFieldCost, start: 1}
}

// rowLimitError is a row that breaks the limits.
type rowLimitError struct {
	line   int
	fields bool // too many fields, not too many bytes
}

func (e *rowLimitError) Error() string { return e.err().Error() }

func (e *rowLimitError) err() *contact.Error {
	if e.fields {
		return lineError(e.line, "a row of more than %d fields; a list may have at most %d columns", MaxCSVColumns, MaxCSVColumns)
	}
	return lineError(e.line, "a row longer than %d KiB (each field counts %d bytes more than its text); is a quote left open?", MaxCSVRecord>>10, CSVFieldCost)
}

func (l *rowLimit) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i, b := range p[:n] {
		l.cost++
		switch b {
		case '"':
			l.quoted = !l.quoted // "" inside a quoted field toggles twice
		case ',':
			if !l.quoted {
				l.fields++
				l.cost += CSVFieldCost
			}
		case '\n':
			l.lines++
			if !l.quoted {
				l.fields, l.cost, l.start = 1, CSVFieldCost, l.lines+1
			}
		}
		if l.fields > MaxCSVColumns || l.cost > MaxCSVRecord {
			l.err = &rowLimitError{line: l.start, fields: l.fields > MaxCSVColumns}
			return i, l.err
		}
	}
	return n, err
}
