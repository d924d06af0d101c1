package collector

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAttempts is how often a request is tried in total (one try and two retries), as long as
// the timeout budget lasts.
const maxAttempts = 3

// maxErrorBody caps how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client talks to the events API and the status API. Its zero value is not usable; create it
// with NewClient.
type Client struct {
	eventsURL string
	statusURL string
	token     string
	timeout   time.Duration
	userAgent string
	http      *http.Client
	// sleep waits between attempts; tests replace it to observe back-off without waiting.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

// Config configures a Client.
type Config struct {
	EventsURL string        // base URL of the events API, e.g. http://127.0.0.1:4320
	StatusURL string        // base URL of the status API, e.g. http://127.0.0.1:4321
	Token     string        // bearer token sent to both APIs; empty sends none
	Timeout   time.Duration // budget of one call, retries included
	UserAgent string
}

// NewClient returns a Client for cfg.
func NewClient(cfg Config) *Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// A CLI makes a handful of requests; idle connections would only outlive it.
	transport.DisableKeepAlives = true
	transport.DialContext = (&net.Dialer{Timeout: cfg.Timeout}).DialContext
	transport.ResponseHeaderTimeout = cfg.Timeout
	return &Client{
		eventsURL: strings.TrimRight(cfg.EventsURL, "/"),
		statusURL: strings.TrimRight(cfg.StatusURL, "/"),
		token:     cfg.Token,
		timeout:   cfg.Timeout,
		userAgent: cfg.UserAgent,
		http:      &http.Client{Transport: transport},
		sleep:     sleepContext,
		now:       time.Now,
	}
}

// EventsURL is the base URL of the events API.
func (c *Client) EventsURL() string { return c.eventsURL }

// StatusURL is the base URL of the status API.
func (c *Client) StatusURL() string { return c.statusURL }

// UnreachableError means no answer came from the API within the timeout budget: the connection
// failed or timed out.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("%s unreachable: %v", e.URL, e.Err) }
func (e *UnreachableError) Unwrap() error { return e.Err }

// HTTPError is an answer other than success.
type HTTPError struct {
	StatusCode int
	Body       APIError // decoded JSON error; Body.Error is empty when the body was not JSON
	Raw        string   // the body as received, trimmed
}

func (e *HTTPError) Error() string {
	msg := e.Body.Error
	if msg == "" {
		msg = e.Raw
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("%d %s", e.StatusCode, msg)
	if e.Body.Field != "" {
		s += fmt.Sprintf(" (field %s)", e.Body.Field)
	}
	return s
}

// NewEventID returns a random event id, so that a retried event counts once.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Post sends one event to the events API. An event without an id gets a random one, and the
// same id is used for every retry.
func (c *Client) Post(ctx context.Context, ev Event) (Accepted, error) {
	if ev.ID == "" {
		ev.ID = NewEventID()
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Accepted{}, fmt.Errorf("encoding %s event: %w", ev.Type, err)
	}
	var acc Accepted
	err = c.do(ctx, http.MethodPost, c.eventsURL+"/v1/events", body, func(b []byte) error {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		// The count is informational; an answer we cannot read is still an accepted event.
		_ = json.Unmarshal(b, &acc)
		return nil
	})
	return acc, err
}

// ErrNotFound is returned by GetStatus when the status API does not know the build (yet).
var ErrNotFound = errors.New("build not found")

// GetStatus reads a build from the status API.
func (c *Client) GetStatus(ctx context.Context, buildID string) (Status, error) {
	var st Status
	raw, err := c.GetStatusRaw(ctx, buildID)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("decoding status of build %q: %w", buildID, err)
	}
	return st, nil
}

// GetStatusRaw reads a build from the status API and returns the JSON as received.
func (c *Client) GetStatusRaw(ctx context.Context, buildID string) ([]byte, error) {
	var raw []byte
	err := c.do(ctx, http.MethodGet, c.statusURL+"/v1/builds/"+url.PathEscape(buildID), nil, func(b []byte) error {
		raw = b
		return nil
	})
	var he *HTTPError
	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, buildID)
	}
	return raw, err
}

// do runs one request with retries on connection errors, 5xx and 429 within the timeout
// budget, and hands a 2xx body to ok.
func (c *Client) do(ctx context.Context, method, target string, body []byte, ok func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var lastErr error
	for attempt := 1; ; attempt++ {
		wait, err := c.attempt(ctx, method, target, body, ok)
		if err == nil {
			return nil
		}
		lastErr = err
		if wait < 0 || attempt == maxAttempts {
			return lastErr
		}
		if wait == 0 {
			wait = time.Duration(attempt) * 100 * time.Millisecond
		}
		if c.now().Add(wait).After(deadline) {
			// Waiting would outlast the budget: give up now rather than at the deadline.
			return lastErr
		}
		if c.sleep(ctx, wait) != nil {
			return lastErr
		}
	}
}

// attempt makes one request. It returns the error and how long to wait before a retry:
// negative for errors that a retry cannot fix, zero for the default back-off.
func (c *Client) attempt(ctx context.Context, method, target string, body []byte, ok func([]byte) error) (time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return -1, fmt.Errorf("building request for %s: %w", target, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, &UnreachableError{URL: baseOf(target), Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, &UnreachableError{URL: baseOf(target), Err: err}
		}
		return 0, ok(b)
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	he := &HTTPError{StatusCode: resp.StatusCode, Raw: strings.TrimSpace(string(raw))}
	_ = json.Unmarshal(raw, &he.Body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return retryAfter(resp.Header.Get("Retry-After"), c.now()), he
	case resp.StatusCode >= 500:
		return 0, he
	default:
		return -1, he
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); 0 when absent or invalid.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func baseOf(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	return u.Scheme + "://" + u.Host
}

// unwrapURLError drops the "Post "http://…": " prefix that net/http adds; the caller names the
// URL itself.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
