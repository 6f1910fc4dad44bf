package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	httpapi "github.com/outreach/outreach/http"
)

// TestScrubStallEndsWithTheErrorRow sends a scrub over a raw connection: the
// header and a few rows, then nothing, while it goes on reading. Past the
// upload idle limit the server must answer what it promised, never an
// empty 499: the error row and the trailer once the answer has begun, a
// JSON error before.
func TestScrubStallEndsWithTheErrorRow(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	tests := []struct {
		name  string
		batch int // rows per batch: 2 begins the answer before the stall
		rows  int
	}{
		{"before the answer begins", 0, 3},
		{"after the answer began", 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := newListsEnv(t, listsOptions{})
			srv := httptest.NewServer(httpapi.New(httpapi.Config{
				Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: env.checker,
				Lists: httpapi.ListsConfig{Suppressions: env.store, UploadIdle: idle, ScrubBatch: tt.batch},
			}).Handler())
			defer srv.Close()

			conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second)) // the test's bound
			var list strings.Builder
			list.WriteString("customer_id,name\n")
			for i := range tt.rows {
				fmt.Fprintf(&list, "c4,row %d\n", i)
			}
			fmt.Fprintf(conn, "POST /v1/lists/scrub HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n",
				list.Len(), list.String())
			// Then nothing more is sent; the answer is read as it comes.
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("after %v, reading the answer (status %d, %q): %v", time.Since(start), resp.StatusCode, body, err)
			}
			if tt.batch == 0 {
				var e struct {
					Error struct{ Code, Message, Field string }
				}
				if resp.StatusCode < 400 || resp.StatusCode >= 500 || json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
					t.Fatalf("status %d, body %q; want a 4xx JSON error", resp.StatusCode, body)
				}
				if e.Error.Field != "list" || !strings.Contains(e.Error.Message, "300ms") {
					t.Errorf("error %+v; want field list and how long the server waited", e.Error)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, body %q; want 200 and CSV", resp.StatusCode, body)
			}
			rows := readCSV(t, body)
			last := rows[len(rows)-1]
			if len(rows) < 3 || last[0] != "" || last[3] != httpapi.ScrubErrorCode || !strings.Contains(last[4], "300ms") {
				t.Fatalf("answer:\n%s\nwant the checked rows, then an error row saying the list stalled", body)
			}
			for _, r := range rows[1 : len(rows)-1] {
				if r[0] != "c4" || r[2] != "true" {
					t.Errorf("row %v: want c4 allowed", r)
				}
			}
			if tr := resp.Trailer.Get(httpapi.ScrubStatusTrailer); !strings.HasPrefix(tr, "error: ") {
				t.Errorf("trailer %q, want error: …", tr)
			}
		})
	}
}

// TestSuppressionStallIsATimeout sends part of a suppression list, then
// nothing, while reading: the answer is a 408 naming the line, and the
// list is as it was.
func TestSuppressionStallIsATimeout(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: env.checker,
		Lists: httpapi.ListsConfig{Suppressions: env.store, UploadIdle: 300 * time.Millisecond},
	}).Handler())
	defer srv.Close()
	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	list := "customer_id\ns1\ns2\n"
	fmt.Fprintf(conn, "PUT /v1/suppressions/litigators HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(list), list)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	if resp.StatusCode != 408 || json.Unmarshal(body, &e) != nil || e.Error.Code != "timeout" || !strings.Contains(e.Error.Message, "line 4") {
		t.Errorf("status %d, body %q; want 408 timeout naming line 4", resp.StatusCode, body)
	}
	if n, err := env.store.SuppressionCount(context.Background(), "litigators"); err != nil || n != 1 {
		t.Errorf("the list holds %d entries (%v), want its 1 entry as before", n, err)
	}
}
