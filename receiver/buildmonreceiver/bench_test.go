package buildmonreceiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// benchReceiver starts the receiver for a benchmark: no rate limit, room for the builds; with
// withStorage the registry is kept in a file_storage extension in a temporary directory.
func benchReceiver(b *testing.B, builds int, withStorage bool) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	endpoint := l.Addr().String()
	l.Close()
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Events.NetAddr.Endpoint = endpoint
	cfg.Events.MaxRequestBodySize = 64 << 20
	cfg.Host.Enabled = false
	cfg.RateLimit.EventsPerSecond = 0
	cfg.MaxBuilds = builds + 1
	cfg.MaxEventIDsPerBuild = 100
	host := componenttest.NewNopHost()
	if withStorage {
		id, ext := newFileStorage(b, b.TempDir())
		b.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
		host = hostWithExtensions{Host: host, ext: map[component.ID]component.Component{id: ext}}
		cfg.Storage = &id
	}
	r, err := f.CreateMetrics(context.Background(), nopSettings(), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background(), host); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	url := "http://" + endpoint + "/v1/events"
	var sb strings.Builder
	for i := 0; i < builds; i++ {
		fmt.Fprintf(&sb, `{"type":"build_started","build_id":"bench-%d","pipeline":"bench","phases":[{"name":"BUILD"}]}`+"\n", i)
		fmt.Fprintf(&sb, `{"type":"phase_started","build_id":"bench-%d","phase":"BUILD"}`+"\n", i)
	}
	resp, err := http.Post(url, "application/x-ndjson", strings.NewReader(sb.String()))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		b.Fatalf("setup: %v %v", resp, err)
	}
	resp.Body.Close()
	return url
}

func keepAliveClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}, Timeout: 10 * time.Second}
}

func post(b *testing.B, c *http.Client, url, ct string, body []byte) {
	resp, err := c.Post(url, ct, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// floorServer is the baseline of the request benchmarks: a plain net/http server on loopback
// that reads the body and answers 202 with the same body as the receiver, without confighttp,
// decoding or a registry. The receiver's numbers beside it show what the events API adds.
func floorServer(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":1,"duplicates":0}` + "\n"))
	})}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String() + "/v1/events"
}

// BenchmarkSingleEventRequests: one step_completed per request over loopback with keep-alive.
func BenchmarkSingleEventRequests(b *testing.B) {
	runSingleEventRequests(b, benchReceiver(b, benchBuilds, false))
}

// BenchmarkFloorSingleEventRequests is the baseline of BenchmarkSingleEventRequests.
func BenchmarkFloorSingleEventRequests(b *testing.B) { runSingleEventRequests(b, floorServer(b)) }

// BenchmarkSingleEventRequestsWithStorage: the same with file_storage, where every request
// writes its builds before it is answered (concurrent requests share a write).
func BenchmarkSingleEventRequestsWithStorage(b *testing.B) {
	runSingleEventRequests(b, benchReceiver(b, benchBuilds, true))
}

// benchBuilds is the number of builds the benchmarks' events go to, round robin.
const benchBuilds = 100

func runSingleEventRequests(b *testing.B, url string) {
	const builds = benchBuilds
	c := keepAliveClient()
	defer c.CloseIdleConnections()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Appendf(nil, `{"type":"step_completed","build_id":"bench-%d","phase":"BUILD"}`, i%builds)
			post(b, c, url, "application/json", body)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
}

// BenchmarkNDJSONBatch: batches of 1000 step_completed events over loopback with keep-alive.
func BenchmarkNDJSONBatch(b *testing.B) { runNDJSONBatch(b, benchReceiver(b, benchBuilds, false)) }

// BenchmarkFloorNDJSONBatch is the baseline of BenchmarkNDJSONBatch.
func BenchmarkFloorNDJSONBatch(b *testing.B) { runNDJSONBatch(b, floorServer(b)) }

// BenchmarkNDJSONBatchWithStorage: the same with file_storage, where every batch is written
// before it is answered.
func BenchmarkNDJSONBatchWithStorage(b *testing.B) {
	runNDJSONBatch(b, benchReceiver(b, benchBuilds, true))
}

func runNDJSONBatch(b *testing.B, url string) {
	const builds, batch = benchBuilds, 1000
	var body bytes.Buffer
	for i := 0; i < batch; i++ {
		fmt.Fprintf(&body, `{"type":"step_completed","build_id":"bench-%d","phase":"BUILD"}`+"\n", i%builds)
	}
	c := keepAliveClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.SetBytes(int64(body.Len()))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, c, url, "application/x-ndjson", body.Bytes())
		}
	})
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
}
