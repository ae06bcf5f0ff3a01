package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// healthcheckTimeout bounds the whole check; Docker's HEALTHCHECK has its own
// timeout (30s by default) and should see an answer before it.
const healthcheckTimeout = 5 * time.Second

// healthcheck is "h2cgw healthcheck URL": GET URL and succeed on 2xx. The
// distroless image has no shell and no curl, so its HEALTHCHECK runs the
// binary itself. The error is one line for stderr.
func healthcheck(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return &usageError{"usage: h2cgw healthcheck URL (e.g. http://127.0.0.1:9901/healthz)"}
	}
	u, err := url.Parse(args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &usageError{fmt.Sprintf("healthcheck: invalid URL %q: want http://host:port/path", args[0])}
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy from the environment: the check is of this process.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: GET %s: %s", u, resp.Status)
	}
	fmt.Fprintf(stdout, "healthcheck: GET %s: %s\n", u, resp.Status)
	return nil
}
