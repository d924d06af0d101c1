package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// maxResponseBody caps how much of an answer is read; the events API answers with a few bytes.
const maxResponseBody = 64 << 10

const (
	contentJSON   = "application/json"
	contentNDJSON = "application/x-ndjson"
)

var (
	buildIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	namePattern    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
)

// ClientOptions configures a Client.
type ClientOptions struct {
	Conns   int           // keep-alive connections kept open; default 8
	Token   string        // bearer token; empty sends none
	Timeout time.Duration // limit of one request; default 10 s
}

// Client posts events to one events API over keep-alive connections.
type Client struct {
	target    *url.URL
	eventsURL string
	token     string
	timeout   time.Duration
	http      *http.Client // StartBuilds and Pace; Run has connections of its own
}

// NewClient returns a Client for the events API at target (a base URL such as
// http://127.0.0.1:4320); targets other than a loopback IP address are refused.
func NewClient(target string, opts ClientOptions) (*Client, error) {
	u, err := CheckTarget(target)
	if err != nil {
		return nil, err
	}
	if opts.Conns <= 0 {
		opts.Conns = 8
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        opts.Conns,
		MaxIdleConnsPerHost: opts.Conns,
		MaxConnsPerHost:     opts.Conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// Redirects or proxies could take the load elsewhere; neither is wanted.
		Proxy: nil,
	}
	return &Client{
		target:    u,
		eventsURL: u.String() + "/v1/events",
		token:     opts.Token,
		timeout:   opts.Timeout,
		http: &http.Client{
			Transport: transport,
			Timeout:   opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Close closes the idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// response is what the load generator keeps of one answer.
type response struct {
	status     int
	accepted   int64
	duplicates int64
	body       []byte // only for answers other than 2xx, for error messages
}

// post sends one request and reads the whole answer, so the connection is reused.
func (c *Client) post(ctx context.Context, contentType string, body []byte) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.eventsURL, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", contentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return response{status: resp.StatusCode}, err
	}
	// Drain anything beyond the cap so the connection can be reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	r := response{status: resp.StatusCode}
	if resp.StatusCode/100 == 2 {
		r.accepted, _ = jsonInt(data, `"accepted"`)
		r.duplicates, _ = jsonInt(data, `"duplicates"`)
	} else {
		r.body = data
	}
	return r, nil
}

// jsonInt finds `key: <integer>` in a flat JSON object without decoding it all.
func jsonInt(data []byte, key string) (int64, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := data[i+len(key):]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == ':' || rest[j] == '\t' || rest[j] == '\n' || rest[j] == '\r') {
		j++
	}
	k := j
	for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
		k++
	}
	if k == j {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[j:k]), 10, 64)
	return n, err == nil
}

// StatusError is an answer of the events API other than 2xx.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("events API answered %d: %s", e.Status, e.Body)
}

// StartBuilds starts every build in ids with plan and starts its one phase, in NDJSON batches
// of at most batch events (default 500). Builds that already exist with the same plan count as
// duplicates and are not an error.
func (c *Client) StartBuilds(ctx context.Context, ids []string, plan BuildPlan, batch int) error {
	plan = plan.withDefaults()
	if err := validatePlan(plan); err != nil {
		return err
	}
	if err := validateIDs(ids); err != nil {
		return err
	}
	if batch <= 0 {
		batch = 500
	}
	// All build_started first, then all phase_started: a phase can only start in a build the
	// receiver already knows, whatever its batch validation does.
	for _, started := range []bool{true, false} {
		for lo := 0; lo < len(ids); lo += batch {
			hi := min(lo+batch, len(ids))
			lines := make([][]byte, 0, hi-lo)
			for _, id := range ids[lo:hi] {
				if started {
					lines = append(lines, appendBuildStarted(nil, id, plan))
				} else {
					lines = append(lines, appendPhaseStarted(nil, id, plan.Phase))
				}
			}
			ct, body := contentNDJSON, ndjson(lines)
			if len(lines) == 1 {
				ct, body = contentJSON, lines[0]
			}
			r, err := c.post(ctx, ct, body)
			if err != nil {
				return fmt.Errorf("starting builds: %w", err)
			}
			if r.status/100 != 2 {
				return fmt.Errorf("starting builds %s..%s: %w", ids[lo], ids[hi-1], &StatusError{Status: r.status, Body: string(r.body)})
			}
		}
	}
	return nil
}

func validatePlan(p BuildPlan) error {
	var errs []error
	if !namePattern.MatchString(p.Phase) {
		errs = append(errs, fmt.Errorf("phase %q is not a valid phase name", p.Phase))
	}
	if !buildIDPattern.MatchString(p.Pipeline) {
		errs = append(errs, fmt.Errorf("pipeline %q must match %s", p.Pipeline, buildIDPattern))
	}
	return errors.Join(errs...)
}

func validateIDs(ids []string) error {
	if len(ids) == 0 {
		return errors.New("no builds given")
	}
	for _, id := range ids {
		if !buildIDPattern.MatchString(id) {
			return fmt.Errorf("build id %q must match %s", id, buildIDPattern)
		}
	}
	return nil
}
