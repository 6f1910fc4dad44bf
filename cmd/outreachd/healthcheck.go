package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck asks the outreachd of this container whether it is up
// (outreachd healthcheck): GET /healthz on the port of OUTREACH_HTTP_ADDR,
// on loopback. It exits 0 when it answers 200, else 1 with the reason on
// stderr. It starts nothing and reads no other setting, so that a container
// image without a shell or curl can use it as its HEALTHCHECK.
func healthcheck(getenv func(string) string, stderr io.Writer) int {
	port := "8080"
	if addr := getenv("OUTREACH_HTTP_ADDR"); addr != "" {
		_, p, err := net.SplitHostPort(addr)
		if err != nil || p == "" {
			fmt.Fprintf(stderr, "healthcheck: OUTREACH_HTTP_ADDR %q is not host:port\n", addr)
			return 1
		}
		port = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: /healthz answered %d\n", resp.StatusCode)
		return 1
	}
	return 0
}
