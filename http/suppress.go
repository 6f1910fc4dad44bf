package http

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/dedupe"
)

// The columns of a suppression list upload. A row names a customer_id, a
// phone, or both (two entries).
var suppressIn = []string{"customer_id", "phone", "reason", "expires_at"}

// loadResult answers a suppression list upload.
type loadResult struct {
	List    string   `json:"list"`
	Rows    int      `json:"rows"`    // data rows read
	Entries int      `json:"entries"` // entries written: one per customer_id and one per phone
	Expired int      `json:"expired"` // rows left out because their expires_at had passed
	Ignored []string `json:"ignored_columns,omitempty"`
}

// suppressionEntry answers GET /v1/suppressions/{list}?customer_id=|phone=.
type suppressionEntry struct {
	dedupe.Suppression
	Expired bool `json:"expired"`
}

func (s *Server) replaceSuppressions(c echo.Context) error { return s.loadSuppressions(c, true) }

func (s *Server) addSuppressions(c echo.Context) error { return s.loadSuppressions(c, false) }

func (s *Server) suppressionStore() (Suppressions, error) {
	if s.cfg.Lists.Suppressions == nil {
		return nil, contact.Errorf(contact.EUnavailable, "suppression lists are not configured on this server")
	}
	return s.cfg.Lists.Suppressions, nil
}

// loadSuppressions reads a CSV upload, streamed, and replaces the list with
// it or adds it to the list. Either is all or nothing: the first bad row
// stops the upload with a 400 naming its line, and the list is as before.
// Rows whose expires_at has passed are left out (and so, on a replace,
// dropped from the list).
func (s *Server) loadSuppressions(c echo.Context, replace bool) error {
	sup, err := s.suppressionStore()
	if err != nil {
		return err
	}
	list := c.Param("list")
	if err := requireCSV(c); err != nil {
		return err
	}
	defReason := c.QueryParam("reason")
	if err := contact.ValidText("reason", defReason); err != nil {
		return err
	}
	rc := http.NewResponseController(c.Response())
	body := &progressReader{r: c.Request().Body, rc: rc, idle: s.cfg.Lists.UploadIdle}
	cr, err := newCSVReader(body)
	if err != nil {
		if contact.ErrorCode(err) != contact.EInvalid {
			err = bodyError(err)
		}
		return err
	}
	cols, ignored, err := columns(cr.header, suppressIn...)
	if err != nil {
		return err
	}
	_, hasID := cols["customer_id"]
	_, hasPhone := cols["phone"]
	if !hasID && !hasPhone {
		return lineError(1, "the header needs a customer_id or a phone column (and may have reason and expires_at)")
	}

	now := s.cfg.Now()
	res := loadResult{List: list, Ignored: ignored}
	entries := func(yield func(dedupe.Suppression, error) bool) {
		for {
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if contact.ErrorCode(err) != contact.EInvalid {
					err = bodyError(err)
				}
				yield(dedupe.Suppression{}, err)
				return
			}
			res.Rows++
			es, err := suppressionRow(s.normalizePhone, rec, cols, defReason)
			if err != nil {
				yield(dedupe.Suppression{}, rowError(cr.line, err))
				return
			}
			if exp := es[0].ExpiresAt; exp != nil && !exp.After(now) {
				res.Expired++
				continue
			}
			for _, e := range es {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
	load, verb := sup.AddSuppressions, "added to"
	if replace {
		load, verb = sup.ReplaceSuppressions, "replaced"
	}
	start := time.Now()
	if res.Entries, err = load(c.Request().Context(), list, entries); err != nil {
		return err
	}
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.Lists.UploadIdle))
	s.log.Info("suppression list "+verb, "list", list, "rows", res.Rows, "entries", res.Entries,
		"expired", res.Expired, "seconds", time.Since(start).Seconds())
	return c.JSON(http.StatusOK, res)
}

// suppressionRow returns the entries of one row: one for its customer_id
// and one for its phone, as it has them.
func suppressionRow(normalizePhone func(string) (string, error), rec []string, cols map[string]int, defReason string) ([]dedupe.Suppression, error) {
	get := func(col string) string {
		if i, ok := cols[col]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	e := dedupe.Suppression{Reason: get("reason")}
	if e.Reason == "" {
		e.Reason = defReason
	} else if err := contact.ValidText("reason", e.Reason); err != nil {
		return nil, err
	}
	if v := get("expires_at"); v != "" {
		t, err := parseExpiry(v)
		if err != nil {
			return nil, err
		}
		e.ExpiresAt = &t
	}
	id, phone := get("customer_id"), get("phone")
	if id == "" && phone == "" {
		return nil, contact.Invalid("", "the row has neither a customer_id nor a phone")
	}
	var out []dedupe.Suppression
	if id != "" {
		if err := contact.ValidCustomerID(id); err != nil {
			return nil, err
		}
		byID := e
		byID.CustomerID = id
		out = append(out, byID)
	}
	if phone != "" {
		p, err := normalizePhone(phone)
		if err != nil {
			return nil, err
		}
		byPhone := e
		byPhone.Phone = p
		out = append(out, byPhone)
	}
	return out, nil
}

// parseExpiry reads an RFC 3339 time, or a date, which means its start in
// UTC: an entry expiring on 2027-01-01 no longer counts from that day on.
func parseExpiry(v string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return time.Time{}, contact.Invalid("expires_at", "must be a date such as 2027-01-31 or an RFC 3339 time; got %q", contact.Clip(v))
		}
	}
	if err := contact.CheckTime("expires_at", t); err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// entryKey reads the {entry} of DELETE /v1/suppressions/{list}/{entry}:
// phone:NUMBER, customer:ID, or a bare customer id.
func (s *Server) entryKey(entry string) (dedupe.Suppression, error) {
	if v, ok := strings.CutPrefix(entry, "phone:"); ok {
		p, err := s.normalizePhone(v)
		return dedupe.Suppression{Phone: p}, err
	}
	if v, ok := strings.CutPrefix(entry, "customer:"); ok {
		return dedupe.Suppression{CustomerID: v}, nil
	}
	if entry == "" {
		return dedupe.Suppression{}, contact.Invalid("entry", "is empty; want phone:NUMBER, customer:ID or a customer id")
	}
	return dedupe.Suppression{CustomerID: entry}, nil
}

func (s *Server) deleteSuppression(c echo.Context) error {
	sup, err := s.suppressionStore()
	if err != nil {
		return err
	}
	list := c.Param("list")
	key, err := s.entryKey(c.Param("entry"))
	if err != nil {
		return err
	}
	found, err := sup.DeleteSuppression(c.Request().Context(), list, key)
	if err != nil {
		return err
	}
	if !found {
		return contact.Errorf(contact.ENotFound, "list %s has no such entry", list)
	}
	s.log.Info("suppression entry deleted", "list", list, "entry", key) // its phone shows as its last two digits
	return c.NoContent(http.StatusNoContent)
}

// getSuppressions answers with one entry of a list, named by customer_id or
// phone, or without either, with the list's size.
func (s *Server) getSuppressions(c echo.Context) error {
	sup, err := s.suppressionStore()
	if err != nil {
		return err
	}
	list := c.Param("list")
	ctx := c.Request().Context()
	id, phone := c.QueryParam("customer_id"), c.QueryParam("phone")
	// A + left unencoded in a query string arrives as a space.
	if strings.HasPrefix(phone, " ") {
		phone = "+" + strings.TrimLeft(phone, " ")
	}
	switch {
	case id != "" && phone != "":
		return contact.Invalid("", "give customer_id or phone, not both")
	case id == "" && phone == "":
		n, err := sup.SuppressionCount(ctx, list)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"list": list, "entries": n})
	}
	if phone != "" {
		if phone, err = s.normalizePhone(phone); err != nil {
			return err
		}
	}
	e, err := sup.GetSuppression(ctx, list, dedupe.Suppression{CustomerID: id, Phone: phone})
	if err != nil {
		return err
	}
	expired := e.ExpiresAt != nil && !e.ExpiresAt.After(s.cfg.Now())
	return c.JSON(http.StatusOK, suppressionEntry{Suppression: e, Expired: expired})
}

// normalizePhone reads a phone number into E.164 form; EInvalid (field
// "phone") when it is not one.
func (s *Server) normalizePhone(raw string) (string, error) {
	return s.cfg.Defaults.NormalizePhone("phone", raw)
}
