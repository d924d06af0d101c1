//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// jaegerPorts are the listeners of one Jaeger instance; every one is picked free by the test,
// so Jaeger runs beside collectors (which default to the same 4317, 4318, 8888 and 13133).
type jaegerPorts struct {
	OTLPGRPC, OTLPHTTP, QueryHTTP, QueryGRPC, Health int
}

// jaeger is a real Jaeger v2 (all-in-one settings, memory storage) started by a test.
type jaeger struct {
	Ports jaegerPorts
	// OTLPEndpoint is host:port of its OTLP gRPC receiver, for an `otlp` exporter.
	OTLPEndpoint string
	// QueryURL is the base URL of its query service (API v3 under /api/v3).
	QueryURL string
	bg       *background
}

// jaegerBinary is the Jaeger build of internal/tools/jaeger (make e2e builds it into .tools/).
func jaegerBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BUILDMON_JAEGER")
	if p == "" {
		p = filepath.Join(repoRoot(t), ".tools", "jaeger")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("jaeger binary %s not found (make e2e builds it, or set BUILDMON_JAEGER): %v", p, err)
	}
	return p
}

// startJaeger starts Jaeger with e2e/testdata/jaeger.yaml.tmpl on free loopback ports and waits
// until its health check answers. It stops when the test ends.
func startJaeger(t testing.TB) *jaeger {
	t.Helper()
	p := jaegerPorts{OTLPGRPC: freePort(t), OTLPHTTP: freePort(t), QueryHTTP: freePort(t), QueryGRPC: freePort(t), Health: freePort(t)}
	cfg := renderConfig(t, "jaeger.yaml.tmpl", t.TempDir(), p)
	j := &jaeger{
		Ports:        p,
		OTLPEndpoint: "127.0.0.1:" + strconv.Itoa(p.OTLPGRPC),
		QueryURL:     "http://127.0.0.1:" + strconv.Itoa(p.QueryHTTP),
	}
	// Jaeger's own tracing would export to the default OTLP endpoint (127.0.0.1:4317), where
	// another test's collector may listen.
	j.bg = startBackgroundEnv(t, []string{"OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true"}, jaegerBinary(t), "--config", cfg)
	waitReady(t, j.bg, fmt.Sprintf("http://127.0.0.1:%d/status", p.Health))
	return j
}

// errTraceNotFound is what trace returns while Jaeger answers 404.
var errTraceNotFound = fmt.Errorf("trace not found")

// trace fetches one trace by its hex id from the query API (GET /api/v3/traces/{trace_id}),
// as OTLP data.
func (j *jaeger) trace(ctx context.Context, traceID string) (ptrace.Traces, error) {
	code, body, err := httpGet(ctx, j.QueryURL+"/api/v3/traces/"+traceID)
	if err != nil {
		return ptrace.Traces{}, err
	}
	if code == http.StatusNotFound {
		return ptrace.Traces{}, errTraceNotFound
	}
	if code != http.StatusOK {
		return ptrace.Traces{}, fmt.Errorf("GET trace %s: %d %s", traceID, code, body)
	}
	return decodeJaegerResult(body)
}

// findTraces returns the traces of service that started in the last hour (GET /api/v3/traces).
func (j *jaeger) findTraces(ctx context.Context, service string) (ptrace.Traces, error) {
	q := fmt.Sprintf("%s/api/v3/traces?query.service_name=%s&query.start_time_min=%s&query.start_time_max=%s&query.num_traces=1000",
		j.QueryURL, service, "1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z")
	code, body, err := httpGet(ctx, q)
	if err != nil {
		return ptrace.Traces{}, err
	}
	if code == http.StatusNotFound {
		return ptrace.NewTraces(), nil
	}
	if code != http.StatusOK {
		return ptrace.Traces{}, fmt.Errorf("find traces of %q: %d %s", service, code, body)
	}
	return decodeJaegerResult(body)
}

// services lists the service names Jaeger has seen (GET /api/v3/services).
func (j *jaeger) services(ctx context.Context) ([]string, error) {
	code, body, err := httpGet(ctx, j.QueryURL+"/api/v3/services")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("services: %d %s", code, body)
	}
	var out struct {
		Services []string `json:"services"`
	}
	return out.Services, json.Unmarshal(body, &out)
}

// decodeJaegerResult reads the API v3 answer {"result": <OTLP JSON TracesData>}.
func decodeJaegerResult(body []byte) (ptrace.Traces, error) {
	var wrap struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &wrap); err != nil {
		return ptrace.Traces{}, fmt.Errorf("decoding Jaeger answer: %w", err)
	}
	if len(bytes.TrimSpace(wrap.Result)) == 0 {
		return ptrace.Traces{}, fmt.Errorf("jaeger answer without result: %.200s", body)
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(wrap.Result)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("decoding Jaeger traces: %w", err)
	}
	return td, nil
}
