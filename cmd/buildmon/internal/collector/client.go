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

	"github.com/buildmon/buildmon/internal/wire"
)

// maxAttempts is how often a request is tried in total (one try and two retries), as long as
// the timeout budget lasts.
const maxAttempts = 3

// maxErrorBody caps how much of an error answer is read; the rest is not read.
const maxErrorBody = 64 << 10

// maxAcceptedReply caps the answer to an event, {"accepted":1,"duplicates":0} when all is well.
const maxAcceptedReply = 64 << 10

// MaxStatusReply is the largest status API answer the client reads: a longer one fails with a
// *ReplyTooLargeError rather than growing the client's memory without bound.
//
// The largest legitimate answer is the status of a build at the events API's limits: 64 phases
// (names up to 1,024 bytes) of up to 1,000 milestones (names up to 128 bytes). Should the status
// list every milestone ({"name":…,"reached_at":"…"}, about 60 bytes besides the name), that is
// 64,000 × about 190 bytes ≈ 12 MB, or ≈ 54 MB in the worst case where every character of every
// name is one that the server's JSON encoder writes as a 6-byte \u escape (<, > and &). The
// phases themselves (in phases, active_operations and reports, each name up to 6 KiB escaped)
// add about 1.2 MB, the other fields a few KiB. 64 MiB is above that worst case and about five
// times the realistic one. Today's status has no milestone list and stays below 1.5 MB.
const MaxStatusReply = 64 << 20

// maxRetryAfter caps a Retry-After, so that an absurd one cannot overflow a time.Duration;
// any wait this long is past every budget and ends the retries.
const maxRetryAfter = 24 * time.Hour

// Client talks to the events API and the status API. Its zero value is not usable; create it
// with NewClient.
type Client struct {
	eventsURL string
	statusURL string
	token     string
	timeout   time.Duration
	userAgent string
	http      *http.Client
	// statusReplyLimit is MaxStatusReply; tests lower it.
	statusReplyLimit int64
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
		eventsURL:        strings.TrimRight(cfg.EventsURL, "/"),
		statusURL:        strings.TrimRight(cfg.StatusURL, "/"),
		token:            cfg.Token,
		timeout:          cfg.Timeout,
		userAgent:        cfg.UserAgent,
		http:             &http.Client{Transport: transport},
		sleep:            sleepContext,
		statusReplyLimit: MaxStatusReply,
		now:              time.Now,
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
	Body       wire.Error // decoded JSON error; Body.Error is empty when the body was not JSON
	Raw        string     // the body as received, trimmed
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%d %s", e.StatusCode, e.Detail())
}

// Detail is what the answer says: the JSON error with the field it names, e.g. "steps must not
// be negative (field phases[1].steps)", else the body as received, else the status text.
func (e *HTTPError) Detail() string {
	if e.Body.Permission != "" {
		return e.forbidden()
	}
	msg := e.Body.Error
	if msg == "" {
		msg = e.Raw
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	switch {
	case e.Body.Field != "" && e.Body.Index != nil:
		msg += fmt.Sprintf(" (event %d, field %s)", *e.Body.Index, e.Body.Field)
	case e.Body.Field != "":
		msg += fmt.Sprintf(" (field %s)", e.Body.Field)
	}
	return msg
}

// forbidden is what a 403 of access rules says: who lacks which permission on what, e.g.
// "subject cn:runner-a lacks permission events:write on pipeline team-b/app (host h1)".
func (e *HTTPError) forbidden() string {
	b := e.Body
	subject := b.Subject
	if subject == "" {
		subject = "anonymous"
	}
	msg := fmt.Sprintf("subject %s lacks permission %s", subject, b.Permission)
	switch {
	case b.Pipeline != "" && b.Host != "":
		msg += fmt.Sprintf(" on pipeline %s (host %s)", b.Pipeline, b.Host)
	case b.Pipeline != "":
		msg += " on pipeline " + b.Pipeline
	case b.Host != "":
		msg += " on host " + b.Host
	}
	if b.Index != nil {
		msg += fmt.Sprintf(" (event %d)", *b.Index)
	}
	return msg
}

// ReplyTooLargeError is an answer longer than the client reads. It is not retried.
type ReplyTooLargeError struct {
	URL        string
	StatusCode int
	Limit      int64 // bytes
}

func (e *ReplyTooLargeError) Error() string {
	return fmt.Sprintf("%s: reply larger than %d bytes (%s), the most the client reads", e.URL, e.Limit, sizeText(e.Limit))
}

// sizeText writes n bytes as KiB or MiB when it is a whole number of them.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// InvalidEventError is an event that the client does not send, because a field holds text the
// events API refuses (a control character, invalid UTF-8).
type InvalidEventError struct {
	Field string // as the events API names it, e.g. "phases[1].milestones[0]"
	Value string
	Err   error
}

func (e *InvalidEventError) Error() string {
	return fmt.Sprintf("%s %q %v", e.Field, e.Value, e.Err)
}

func (e *InvalidEventError) Unwrap() error { return e.Err }

// NewEventID returns a random event id, so that a retried event counts once.
func NewEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Post sends one event to the events API. An event without an id gets a random one, and the
// same id is used for every retry.
//
// An event with a control character or invalid UTF-8 in any of its texts is not sent: Post
// returns an *InvalidEventError naming the field.
func (c *Client) Post(ctx context.Context, ev wire.Event) (wire.Accepted, error) {
	if err := checkEvent(ev); err != nil {
		return wire.Accepted{}, err
	}
	if ev.ID == "" {
		ev.ID = NewEventID()
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return wire.Accepted{}, fmt.Errorf("encoding %s event: %w", ev.Type, err)
	}
	var acc wire.Accepted
	err = c.do(ctx, http.MethodPost, c.eventsURL+"/v1/events", body, maxAcceptedReply, func(b []byte) error {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		// The count is informational; an answer we cannot read is still an accepted event.
		_ = json.Unmarshal(b, &acc)
		return nil
	})
	var tooLarge *ReplyTooLargeError
	if errors.As(err, &tooLarge) && tooLarge.StatusCode/100 == 2 {
		// Accepted all the same; only the count is lost.
		return wire.Accepted{}, nil
	}
	return acc, err
}

// ErrNotFound is returned by GetStatus when the status API does not know the build (yet).
var ErrNotFound = errors.New("build not found")

// GetStatus reads a build from the status API.
func (c *Client) GetStatus(ctx context.Context, buildID string) (wire.BuildStatus, error) {
	var st wire.BuildStatus
	raw, err := c.GetStatusRaw(ctx, buildID)
	if err != nil {
		return st, err
	}
	st, err = DecodeStatus(raw)
	if err != nil {
		return st, fmt.Errorf("decoding status of build %q: %w", buildID, err)
	}
	return st, nil
}

// DecodeStatus decodes a status API answer. A member whose JSON type is not the contract's
// (a newer or older server) is left at its zero value and the rest decoded, so that a change
// on the server side degrades the display rather than the client; JSON that is not a status
// object is an error.
func DecodeStatus(raw []byte) (wire.BuildStatus, error) {
	var st wire.BuildStatus
	err := json.Unmarshal(raw, &st)
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return st, nil
	}
	return st, err
}

// GetStatusRaw reads a build from the status API and returns the JSON as received. An answer
// longer than MaxStatusReply fails with a *ReplyTooLargeError.
func (c *Client) GetStatusRaw(ctx context.Context, buildID string) ([]byte, error) {
	var raw []byte
	err := c.do(ctx, http.MethodGet, c.statusURL+"/v1/builds/"+url.PathEscape(buildID), nil, c.statusReplyLimit, func(b []byte) error {
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
// budget, and hands a 2xx body of at most replyLimit bytes to ok.
func (c *Client) do(ctx context.Context, method, target string, body []byte, replyLimit int64, ok func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var lastErr error
	for attempt := 1; ; attempt++ {
		wait, err := c.attempt(ctx, method, target, body, replyLimit, ok)
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
		if wait > deadline.Sub(c.now()) {
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
func (c *Client) attempt(ctx context.Context, method, target string, body []byte, replyLimit int64, ok func([]byte) error) (time.Duration, error) {
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
		// One byte more than the limit tells a reply of exactly the limit from a longer one.
		b, err := io.ReadAll(io.LimitReader(resp.Body, replyLimit+1))
		if err != nil {
			if ctx.Err() != nil {
				err = errors.New("timed out reading the reply")
			}
			return 0, &UnreachableError{URL: baseOf(target), Err: err}
		}
		if int64(len(b)) > replyLimit {
			return -1, &ReplyTooLargeError{URL: baseOf(target), StatusCode: resp.StatusCode, Limit: replyLimit}
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
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case secs <= 0:
			return 0
		case secs >= int64(maxRetryAfter/time.Second):
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
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
