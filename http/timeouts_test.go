package http_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	httpapi "github.com/outreach/outreach/http"
)

// TestUploadsOutliveTheServerTimeouts streams a suppression list for
// longer than the server's read and write timeouts and its upload idle
// timeout, making progress all the while, and wants it taken whole.
func TestUploadsOutliveTheServerTimeouts(t *testing.T) {
	t.Parallel()
	env := newListsEnv(t, listsOptions{})
	srv := httptest.NewUnstartedServer(httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: env.checker,
		Lists: httpapi.ListsConfig{Suppressions: env.store, UploadIdle: 300 * time.Millisecond},
	}).Handler())
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	srv.Start()
	defer srv.Close()

	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "customer_id\n")
		for i, end := 0, time.Now().Add(1200*time.Millisecond); time.Now().Before(end); i++ {
			var b strings.Builder
			for j := range 5000 {
				fmt.Fprintf(&b, "u-%d-%d\n", i, j)
			}
			if _, err := io.WriteString(pw, b.String()); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/suppressions/long", pr)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
}
