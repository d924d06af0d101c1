package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"mime"
	"net"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/internal/access"
	"github.com/buildmon/buildmon/internal/wire"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// writeJSON encodes v before it writes the status, so that a value that cannot be encoded is
// a 500 that says so, not a 200 with an empty body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(wire.Error{Error: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Header values shared by all answers; net/http only reads them.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

// writeAccepted writes the 202 answer, a wire.Accepted, by hand: it is the answer of nearly
// every request (TestAcceptedBodyIsTheWireShape keeps the two the same).
func writeAccepted(w http.ResponseWriter, res events.Result) {
	var b [64]byte
	out := append(b[:0], `{"accepted":`...)
	out = strconv.AppendInt(out, int64(res.Accepted), 10)
	out = append(out, `,"duplicates":`...)
	out = strconv.AppendInt(out, int64(res.Duplicates), 10)
	out = append(out, "}\n"...)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(out)
}

// bodyBuffers recycles request bodies: decoded events copy what they keep, so a body is
// garbage once decoded.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps a rare huge batch from pinning its buffer in the pool.
const maxPooledBody = 4 << 20

func releaseBody(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBody {
		return
	}
	buf.Reset()
	bodyBuffers.Put(buf)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, wire.Error{Error: msg})
}

// confighttpErrorHandler answers the errors of confighttp's interceptors (auth, decompression)
// in the API's JSON shape.
func confighttpErrorHandler(r *buildmonReceiver) confighttp.ToServerOption {
	return confighttp.WithErrorHandler(func(w http.ResponseWriter, req *http.Request, msg string, status int) {
		r.reject(req, status, "transport")
		writeError(w, status, msg)
	})
}

// Paths of the events API. The registry's view of a build lives under /v1/registry, so that
// /v1/builds/{id} means one thing in buildmon: the checkpoint exporter's status of a build.
const (
	eventsPath        = "/v1/events"
	registryBuildPath = "/v1/registry/builds/{id}"
	// movedBuildPath is where the registry's view was served before; it answers a JSON 404
	// that names the new path.
	movedBuildPath = "/v1/builds/{id}"
)

const (
	notFoundMessage = "not found: the API is POST " + eventsPath + " and GET " + registryBuildPath
	movedMessage    = "not found: the events API serves the registry's view of a build at GET " + registryBuildPath +
		"; GET " + movedBuildPath + " is the status API of the checkpoint exporter"
)

func (r *buildmonReceiver) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(eventsPath, r.handleEvents)
	mux.HandleFunc(registryBuildPath, r.handleBuild)
	mux.HandleFunc(movedBuildPath, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, movedMessage)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, notFoundMessage)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// ServeMux answers an unclean path (//v1/events, /v1/../v1/events) with an HTML
		// redirect; the API answers JSON, and a client must use the path as documented.
		if p := req.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
			writeError(w, http.StatusNotFound, notFoundMessage)
			return
		}
		mux.ServeHTTP(w, req)
	})
}

func (r *buildmonReceiver) reject(req *http.Request, status int, reason string) {
	r.telemetry.ReceiverBuildmonRequestsRejected.Add(req.Context(), 1)
	if status >= 500 {
		r.set.Logger.Warn("events request failed", zap.Int("status", status), zap.String("reason", reason))
	}
}

func (r *buildmonReceiver) handleEvents(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.reject(req, http.StatusMethodNotAllowed, "method")
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	batch, ok := batchContentType(req.Header.Get("Content-Type"))
	if !ok {
		r.reject(req, http.StatusUnsupportedMediaType, "content type")
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json (one event) or application/x-ndjson (a batch)")
		return
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer releaseBody(buf)
	// The buffer grows as the body arrives, never ahead of it to an announced Content-Length:
	// a client that announces a large body and sends it slowly holds only what it sent.
	_, err := buf.ReadFrom(req.Body)
	body := buf.Bytes()
	if err != nil {
		var tooLarge *http.MaxBytesError
		var netErr net.Error
		switch {
		case errors.As(err, &tooLarge):
			r.reject(req, http.StatusRequestEntityTooLarge, "body size")
			writeError(w, http.StatusRequestEntityTooLarge, "body larger than events.max_request_body_size ("+strconv.FormatInt(tooLarge.Limit, 10)+" bytes)")
		case errors.As(err, &netErr) && netErr.Timeout():
			w.Header().Set("Connection", "close")
			r.reject(req, http.StatusRequestTimeout, "read timeout")
			writeError(w, http.StatusRequestTimeout, "the body did not arrive within events.read_timeout")
		default:
			r.reject(req, http.StatusBadRequest, "read")
			writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		}
		return
	}
	// The rate limit is checked on the number of events before they are decoded, so that a
	// batch that may not pass costs no decoding: a body that names no lifecycle event type is
	// progress events only; one that does is decoded first, and its events say which it is.
	now := r.now()
	n := 1
	if batch {
		n = countLines(body)
	}
	key := clientKey(req, r.authID != "")
	var evs []events.Event
	lifecycle := false
	if mayHoldLifecycle(body) {
		if evs, err = r.decode(body, batch); err != nil {
			// An invalid request costs its tokens as it did before it was decoded, so that
			// invalid requests are rate-limited too.
			if adm := r.limiter.allow(key, n, true, now); !adm.ok && !r.limiter.neverFits(n, true) {
				r.writeRateLimited(w, req, adm, true)
				return
			}
			r.writeEventError(w, req, err)
			return
		}
		lifecycle = slices.ContainsFunc(evs, func(ev events.Event) bool { return ev.Type.Lifecycle() })
	}
	if r.limiter.neverFits(n, lifecycle) {
		r.reject(req, http.StatusRequestEntityTooLarge, "rate limit burst")
		msg := "a batch of " + strconv.Itoa(n) + " events can never pass the rate limit: it is larger than rate_limit.burst (" + strconv.Itoa(r.cfg.RateLimit.Burst) + "); send smaller batches"
		if !lifecycle {
			msg = "a batch of " + strconv.Itoa(n) + " step and milestone events can never pass the rate limit: it is larger than rate_limit.burst (" + strconv.Itoa(r.cfg.RateLimit.Burst) +
				") less the " + strconv.Itoa(r.limiter.reserve) + " kept for lifecycle events (rate_limit.lifecycle_reserve); send smaller batches"
		}
		writeError(w, http.StatusRequestEntityTooLarge, msg)
		return
	}
	if adm := r.limiter.allow(key, n, lifecycle, now); !adm.ok {
		r.writeRateLimited(w, req, adm, lifecycle)
		return
	}
	if evs == nil {
		if evs, err = r.decode(body, batch); err != nil {
			r.writeEventError(w, req, err)
			return
		}
	}
	var rc *requestCheck
	var check events.Check
	if r.policy.Enabled() {
		rc = &requestCheck{policy: r.policy, id: access.Identify(req, r.authID)}
		check = rc.check
	}
	res, err := r.apply(evs, now, check)
	var denied *access.Denied
	if errors.As(err, &denied) {
		r.forbid(w, req, denied, err)
		return
	}
	if errors.Is(err, errNotStored) {
		w.Header().Set("Retry-After", strconv.Itoa(storageRetryAfter))
		r.reject(req, http.StatusServiceUnavailable, "storage write")
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if err != nil {
		r.writeEventError(w, req, err)
		return
	}
	if rc != nil && rc.n > 0 {
		r.audit.Record(access.Decision{Subject: rc.id.Subject(), Action: access.EventsWrite, Target: rc.first, Allowed: true, Count: rc.n}, now)
	}
	ctx := req.Context()
	if res.Accepted > 0 {
		r.telemetry.ReceiverBuildmonEventsAccepted.Add(ctx, int64(res.Accepted))
		r.notify()
	}
	if res.Duplicates > 0 {
		r.telemetry.ReceiverBuildmonEventsDuplicate.Add(ctx, int64(res.Duplicates))
	}
	writeAccepted(w, res)
}

// decode reads the request's events: one (application/json) or a batch (NDJSON).
func (r *buildmonReceiver) decode(body []byte, batch bool) ([]events.Event, error) {
	opts := events.DecodeOptions{Now: r.now(), MaxClockSkew: r.cfg.MaxClockSkew}
	if batch {
		return events.DecodeNDJSON(body, nil, opts)
	}
	ev, err := events.DecodeOne(body, opts)
	if err != nil {
		return nil, err
	}
	return []events.Event{ev}, nil
}

// lifecycleTypeNames are the lifecycle event types as they appear in a body.
var lifecycleTypeNames = func() [][]byte {
	out := make([][]byte, len(wire.LifecycleEventTypes))
	for i, t := range wire.LifecycleEventTypes {
		out[i] = []byte(t)
	}
	return out
}()

// mayHoldLifecycle reports whether body names a lifecycle event type anywhere. When it does
// not, the body holds progress events only (or is invalid): the rate limiter can judge it
// without decoding it. A body that names one (in a type, or in a name or message) is decoded
// before the rate limit, so that its events are classified exactly. A type written with JSON
// escapes is missed, and its request is limited as progress events: stricter, never looser.
func mayHoldLifecycle(body []byte) bool {
	for _, name := range lifecycleTypeNames {
		if bytes.Contains(body, name) {
			return true
		}
	}
	return false
}

// writeRateLimited answers 429 with Retry-After and a wire.RateLimited body that says which
// event types were limited and which the client may still send.
func (r *buildmonReceiver) writeRateLimited(w http.ResponseWriter, req *http.Request, adm admission, lifecycle bool) {
	secs := max(int(math.Ceil(adm.wait.Seconds())), 1)
	retry := strconv.Itoa(secs)
	rate := strconv.FormatFloat(r.cfg.RateLimit.EventsPerSecond, 'g', -1, 64)
	body := wire.RateLimited{RetryAfterSeconds: secs, Limited: wire.EventTypes, Admitted: []string{}}
	switch {
	case lifecycle:
		body.Error = "rate limit of " + rate + " events/s exceeded, including the share kept for lifecycle events; retry after " + retry + "s"
	case adm.lifecycleOpen:
		body.Error = "rate limit of " + rate + " events/s exceeded for step and milestone events; lifecycle events (build and phase transitions) are still admitted from the share kept for them (rate_limit.lifecycle_reserve); retry the step and milestone events after " + retry + "s"
		body.Limited, body.Admitted = wire.ProgressEventTypes, wire.LifecycleEventTypes
	default:
		body.Error = "rate limit of " + rate + " events/s exceeded; retry after " + retry + "s"
	}
	w.Header().Set("Retry-After", retry)
	r.reject(req, http.StatusTooManyRequests, "rate limit")
	writeJSON(w, http.StatusTooManyRequests, body)
}

// requestCheck is the access check of one request's events. The registry calls it once per
// build of the request (a build's pipeline and host do not change); the committer may run
// it: the handler waits for the answer before it reads n and first.
type requestCheck struct {
	policy *access.Policy
	id     access.Identity

	first access.Target // the first build allowed, for the audit line
	n     int           // builds allowed
}

func (c *requestCheck) check(pipeline, host string) error {
	t := access.Build(pipeline, host)
	if err := c.policy.Check(c.id, access.EventsWrite, t); err != nil {
		return err
	}
	if c.n == 0 {
		c.first = t
	}
	c.n++
	return nil
}

// forbid answers a request that access rules refuse: 403 with the JSON error naming the
// missing permission and the target, and an audit line. Nothing of the request was applied.
func (r *buildmonReceiver) forbid(w http.ResponseWriter, req *http.Request, d *access.Denied, err error) {
	r.audit.Record(access.Decision{Subject: d.Subject, Action: d.Action, Target: d.Target}, r.now())
	r.reject(req, http.StatusForbidden, "forbidden")
	body := forbiddenBody(d)
	var e *events.Error
	if errors.As(err, &e) && e.Index >= 0 {
		i := e.Index
		body.Index = &i
	}
	writeJSON(w, http.StatusForbidden, body)
}

// forbiddenBody is the JSON error of a 403.
func forbiddenBody(d *access.Denied) wire.Error {
	body := wire.Error{Error: d.Error(), Permission: string(d.Action), Subject: d.Subject, Host: d.Target.Host}
	if !d.Target.IsHost {
		body.Pipeline = d.Target.Pipeline
	}
	return body
}

func (r *buildmonReceiver) writeEventError(w http.ResponseWriter, req *http.Request, err error) {
	var e *events.Error
	if !errors.As(err, &e) {
		r.reject(req, http.StatusInternalServerError, err.Error())
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	body := wire.Error{Error: e.Error(), Field: e.Field}
	if e.Index >= 0 {
		i := e.Index
		body.Index = &i
	}
	status := eventErrorStatus(e.Kind)
	r.reject(req, status, "invalid event")
	writeJSON(w, status, body)
}

// eventErrorStatus is the HTTP status of an event error's kind, as the README documents:
// 400 for an invalid event, 404 for an unknown build, 409 for a build started again with a
// different plan, 429 while max_builds builds are tracked. A kind this handler does not know
// is the receiver's fault: 500.
func eventErrorStatus(k events.Kind) int {
	switch k {
	case events.KindInvalid:
		return http.StatusBadRequest
	case events.KindUnknownBuild:
		return http.StatusNotFound
	case events.KindConflict:
		return http.StatusConflict
	case events.KindTooManyBuilds:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// storageRetryAfter is the Retry-After, in seconds, of a request whose storage write failed.
// One second fits the build client's default --timeout of 2s, so the client's own retry
// rides over a short fault; a fault that lasts gets 503 again, and the client gives up.
const storageRetryAfter = 1

// countLines counts the lines of an NDJSON body that hold more than JSON whitespace: the
// events of a batch, as the decoder counts them (blank lines are skipped).
func countLines(body []byte) int {
	n := 0
	blank := true
	for _, c := range body {
		switch c {
		case '\n':
			if !blank {
				n++
			}
			blank = true
		case ' ', '\t', '\r':
		default:
			blank = false
		}
	}
	if !blank {
		n++
	}
	return n
}

// batchContentType tells a single event (application/json) from a batch (NDJSON).
func batchContentType(ct string) (batch, ok bool) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, false
	}
	switch strings.ToLower(mt) {
	case "application/json":
		return false, true
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
		return true, true
	}
	return false, false
}
