package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// connectTimeout bounds connecting to the server; requests themselves are
// bounded by --timeout, except uploads, which may take as long as they take.
const connectTimeout = 10 * time.Second

// maxJSONResponse is the largest JSON answer read into memory.
const maxJSONResponse = 64 << 20

// client calls the outreach API. It is safe for concurrent use.
type client struct {
	base    string // scheme://host[/prefix], without a trailing slash
	key     string
	timeout time.Duration // of short requests
	http    *http.Client  // without an overall timeout: uploads stream
}

// newClient returns a client of the server at rawURL. A URL without a
// scheme is taken as http.
func newClient(rawURL, key string, timeout time.Duration) (*client, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server must be an http or https URL such as %s; got %q", defaultServer, rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = connectTimeout
	return &client{base: u.String(), key: key, timeout: timeout, http: &http.Client{Transport: tr}}, nil
}

// url returns the URL of path, whose segments the caller has escaped.
func (c *client) url(path string, query url.Values) string {
	s := c.base + path
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

// request is one API call.
type request struct {
	method      string
	path        string // escaped
	query       url.Values
	body        io.Reader
	size        int64  // of body; -1 unknown
	contentType string // of body
	accept      string
}

// send sends r and returns the response when its status is 2xx. Any other
// status is an *apiError. The caller closes the body.
func (c *client) send(ctx context.Context, r request) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, c.url(r.path, r.query), r.body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.ContentLength = r.size
		if r.size == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", "outreachctl")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the method and URL
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: no answer within --timeout %v", r.method, r.path, c.timeout)
		}
		return nil, fmt.Errorf("%s %s: %w", r.method, c.url(r.path, nil), err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readAPIError(resp)
}

// call sends a short request under --timeout: in, if not nil, as JSON, and
// returns the raw JSON answer, which it also decodes into out if not nil.
func (c *client) call(ctx context.Context, method, path string, query url.Values, in, out any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	r := request{method: method, path: path, query: query, accept: "application/json"}
	if in != nil {
		b, ok := in.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(in); err != nil {
				return nil, err
			}
		}
		r.body, r.size, r.contentType = bytes.NewReader(b), int64(len(b)), "application/json"
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: the answer did not arrive within --timeout %v", method, path, c.timeout)
		}
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return nil, fmt.Errorf("%s %s: the server answered with unexpected JSON: %v", method, path, err)
		}
	}
	return body, nil
}

// apiError is an answer other than 2xx; Code, Message, Field and Index come
// from the API's one error shape, {"error":{"code","message","field","index"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
	Field   string
	Index   *int
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the server answered %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	} else {
		b.WriteString(" " + http.StatusText(e.Status))
	}
	if e.Message != "" {
		b.WriteString(": ")
		if e.Field != "" {
			b.WriteString(e.Field + ": ")
		}
		b.WriteString(e.Message)
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		b.WriteString(" (set --key or OUTREACH_KEY)")
	case e.Status == http.StatusNotFound && strings.HasPrefix(e.Message, "no such route"):
		b.WriteString(" (is the server older than this outreachctl?)")
	}
	return b.String()
}

// readAPIError reads the error of a non-2xx answer. A body that is not the
// API's error shape (a proxy's page, say) is quoted, shortened.
func readAPIError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &apiError{Status: resp.StatusCode}
	var shape struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
			Index   *int   `json:"index"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &shape) == nil && shape.Error != nil {
		e.Code, e.Message, e.Field, e.Index = shape.Error.Code, shape.Error.Message, shape.Error.Field, shape.Error.Index
		return e
	}
	e.Message = oneLine(string(body), 200)
	return e
}

// oneLine returns s on one line, cut to at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}
