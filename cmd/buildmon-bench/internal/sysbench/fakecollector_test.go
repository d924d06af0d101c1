package sysbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const fakeCollectorEnv = "SYSBENCH_FAKE_COLLECTOR"

// fakeCollector implements the contract the scenarios rely on, in memory: health_check, the
// events API (build_started / step_completed, GET /v1/registry/builds/{id}), the status API's build
// view, build_progress_ratio on /metrics, and a JSON checkpoint of every build's steps written
// every 100 ms with temp file and rename.
type fakeCollector struct {
	mu     sync.Mutex
	steps  map[string]int64 // build id → steps completed
	total  map[string]int64 // build id → steps in its plan
	seq    int
	dirty  bool
	ckpDir string
}

func fakeCollectorMain(args []string) int {
	if len(args) != 2 || args[0] != "--config" {
		fmt.Fprintln(os.Stderr, "fake collector: want --config <file>")
		return 2
	}
	cfg, err := os.ReadFile(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	endpoint := func(path string) string {
		v, err := Lookup(cfg, path)
		if err != nil {
			panic(err)
		}
		return v.(string)
	}
	dir, _ := Lookup(cfg, "exporters.checkpoint.directory")
	f := &fakeCollector{steps: map[string]int64{}, total: map[string]int64{}, ckpDir: dir.(string)}
	if err := os.MkdirAll(f.ckpDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serve := func(addr string, h http.Handler) *http.Server {
		srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.ListenAndServe() }()
		return srv
	}
	builds := http.HandlerFunc(f.getBuild)
	events := http.NewServeMux()
	events.HandleFunc("POST /v1/events", f.postEvents)
	events.Handle("GET /v1/registry/builds/{id}", builds)
	status := http.NewServeMux()
	status.Handle("GET /v1/builds/{id}", builds)
	prom := http.NewServeMux()
	prom.HandleFunc("GET /metrics", f.metrics)
	servers := []*http.Server{
		serve(endpoint("receivers.buildmon.events.endpoint"), events),
		serve(endpoint("exporters.checkpoint.status.endpoint"), status),
		serve(endpoint("exporters.prometheus.endpoint"), prom),
		serve(endpoint("extensions.health_check.endpoint"), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})),
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// With a remote-write exporter configured, something is written to it every 100 ms.
	if rw, err := Lookup(cfg, "exporters.prometheus_remote_write.endpoint"); err == nil {
		go func() {
			for ctx.Err() == nil {
				if resp, err := http.Post(rw.(string), "application/x-protobuf", strings.NewReader("samples")); err == nil {
					resp.Body.Close()
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, s := range servers {
				_ = s.Close()
			}
			return 0
		case <-t.C:
			f.checkpoint()
		}
	}
}

func (f *fakeCollector) postEvents(w http.ResponseWriter, r *http.Request) {
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	f.mu.Lock()
	defer f.mu.Unlock()
	for sc.Scan() {
		var ev struct {
			Type    string `json:"type"`
			BuildID string `json:"build_id"`
			Phases  []struct {
				Steps int64 `json:"steps"`
			} `json:"phases"`
		}
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		switch ev.Type {
		case "build_started":
			if _, ok := f.steps[ev.BuildID]; !ok {
				f.steps[ev.BuildID] = 0
				f.total[ev.BuildID] = max(1, ev.Phases[0].Steps)
			}
		case "step_completed":
			if _, ok := f.steps[ev.BuildID]; !ok {
				http.Error(w, `{"error":"unknown build"}`, http.StatusNotFound)
				return
			}
			f.steps[ev.BuildID]++
		}
		f.dirty = true
		n++
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted": %d, "duplicates": 0}`, n)
}

func (f *fakeCollector) getBuild(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n, ok := f.steps[r.PathValue("id")]
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":"unknown build"}`, http.StatusNotFound)
		return
	}
	fmt.Fprintf(w, `{"id":%q,"phases":[{"name":"BUILD","steps_completed":%d}]}`, r.PathValue("id"), n)
}

func (f *fakeCollector) metrics(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.steps {
		fmt.Fprintf(w, "build_progress_ratio{cicd_pipeline_name=\"p\",cicd_pipeline_run_id=%q} %g\n", id, float64(n)/float64(f.total[id]))
	}
}

func (f *fakeCollector) checkpoint() {
	f.mu.Lock()
	if !f.dirty {
		f.mu.Unlock()
		return
	}
	progress := map[string]float64{}
	for id, n := range f.steps {
		progress[id] = float64(n) / float64(f.total[id])
	}
	f.dirty = false
	f.seq++
	seq := f.seq
	f.mu.Unlock()
	data, _ := json.Marshal(progress)
	tmp := filepath.Join(f.ckpDir, ".state.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		_ = os.Rename(tmp, filepath.Join(f.ckpDir, fmt.Sprintf("state-%020d.ckpt", seq)))
		_ = os.Remove(filepath.Join(f.ckpDir, fmt.Sprintf("state-%020d.ckpt", seq-3)))
	}
}

// readFakeCheckpoint is the fake's counterpart of the exporter's ReadCheckpointProgress.
func readFakeCheckpoint(path string) (map[string]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var progress map[string]float64
	return progress, json.Unmarshal(data, &progress)
}
