package checkpointexporter

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/audit"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/notify"
)

// amAlert is Alertmanager's PostableAlert as the test server decodes it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// receiver is a test HTTP server that records posted bodies; the first failFirst requests
// get 503.
type receiver struct {
	srv       *httptest.Server
	bodies    chan []byte
	paths     chan string
	failFirst int64
	calls     atomic.Int64
}

func newReceiver(t *testing.T, failFirst int64) *receiver {
	r := &receiver{bodies: make(chan []byte, 100), paths: make(chan string, 100), failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.calls.Add(1) <= r.failFirst {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.paths <- req.Method + " " + req.URL.Path + " " + req.Header.Get("Content-Type") + " " + req.Header.Get("X-Team")
		r.bodies <- b
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-r.bodies:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("no notification arrived")
		return nil
	}
}

func (r *receiver) nextAlerts(t *testing.T) []amAlert {
	t.Helper()
	var alerts []amAlert
	require.NoError(t, json.Unmarshal(r.next(t), &alerts))
	return alerts
}

func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case b := <-r.bodies:
		t.Fatalf("unexpected notification %s", b)
	case <-time.After(200 * time.Millisecond):
	}
}

func withAlert(b buildSpec, level string, active int64) buildSpec {
	b.alerts = []alertSpec{{rule: "build_mem_high", level: level, state: "firing", active: active, value: 0.97}}
	return b
}

func TestAlertmanagerFireResendResolve(t *testing.T) {
	am := newReceiver(t, 0)
	cfg := testConfig(t.TempDir())
	cfg.Alertmanager.Endpoint = am.srv.URL
	cfg.Alertmanager.Headers.Set("X-Team", "builds")
	h := newHarness(t, cfg, nil).mustStart()

	// WARNING is below the default min_level (ERROR): not sent.
	h.consume(withAlert(running("b1", 1), "WARNING", 1).metrics())
	am.none(t)

	h.consume(withAlert(running("b1", 2), "ERROR", 1).metrics())
	alerts := am.nextAlerts(t)
	assert.Equal(t, "POST /api/v2/alerts application/json builds", <-am.paths)
	require.Len(t, alerts, 1)
	a := alerts[0]
	assert.Equal(t, map[string]string{
		"alertname": "build_mem_high", "severity": "error", "scope": "build", "service": "buildmon",
		"build_id": "b1", "pipeline": "pipe", "host": "host-a",
	}, a.Labels)
	assert.Equal(t, "0.97", a.Annotations["value"])
	assert.Contains(t, a.Annotations["summary"], "ERROR build_mem_high on build b1")
	assert.True(t, a.StartsAt.Equal(t0.Add(2*time.Second)), a.StartsAt)
	assert.True(t, a.EndsAt.IsZero())

	// Re-sent while firing.
	require.True(t, h.clock.BlockUntil(2), "writer and resend tickers")
	h.clock.Advance(cfg.Alertmanager.ResendInterval)
	again := am.nextAlerts(t)
	require.Len(t, again, 1)
	assert.Equal(t, a.Labels, again[0].Labels)
	assert.True(t, again[0].EndsAt.IsZero())
	<-am.paths

	// The processor's next report of the build lacks the alert: it cleared.
	h.consume(running("b1", 3).metrics())
	resolved := am.nextAlerts(t)
	require.Len(t, resolved, 1)
	assert.Equal(t, "build_mem_high", resolved[0].Labels["alertname"])
	assert.False(t, resolved[0].EndsAt.IsZero())
	<-am.paths

	// Not re-sent any more.
	h.clock.Advance(cfg.Alertmanager.ResendInterval)
	am.none(t)
	h.stop()

	var sent int
	for _, r := range auditRecords(t, filepath.Join(cfg.Directory, "audit.log")) {
		if r.Kind == audit.KindNotification && r.Outcome == "sent" {
			sent++
			assert.Equal(t, "alertmanager", r.Target)
			assert.Equal(t, "build_mem_high", r.Alerts[0].Rule)
		}
	}
	assert.Equal(t, 3, sent)
}

func TestAlertmanagerHostAlertResolvesWhenStale(t *testing.T) {
	am := newReceiver(t, 0)
	cfg := testConfig(t.TempDir())
	cfg.Alertmanager.Endpoint = am.srv.URL
	h := newHarness(t, cfg, nil).mustStart()
	_, host := pausedBuild()
	h.consume(host.metrics())
	fired := am.nextAlerts(t)
	require.Len(t, fired, 1)
	assert.Equal(t, "critical", fired[0].Labels["severity"])
	assert.Equal(t, "host_cpu_saturated", fired[0].Labels["alertname"])
	assert.NotContains(t, fired[0].Labels, "build_id")

	// The processor stops reporting the alert; after alert_stale_after it resolves.
	h.advance(cfg.AlertStaleAfter + cfg.Interval)
	resolved := am.nextAlerts(t)
	require.Len(t, resolved, 1)
	assert.False(t, resolved[0].EndsAt.IsZero())
	code, body := h.get("/v1/hosts/host-a")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), `"alerts":[]`)
}

func TestAlertmanagerRetriesWithBackoff(t *testing.T) {
	am := newReceiver(t, 2)
	cfg := testConfig(t.TempDir())
	cfg.Alertmanager.Endpoint = am.srv.URL
	cfg.Alertmanager.RetryOnFailure.InitialInterval = time.Second
	cfg.Alertmanager.RetryOnFailure.RandomizationFactor = 0
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(withAlert(running("b1", 1), "CRITICAL", 1).metrics())
	for i := 0; i < 2; i++ {
		// writer ticker, resend ticker, backoff timer
		require.True(t, h.clock.BlockUntil(3))
		h.clock.Advance(2 * time.Second)
	}
	alerts := am.nextAlerts(t)
	require.Len(t, alerts, 1)
	assert.Equal(t, int64(3), am.calls.Load())
	assert.True(t, h.logged("warn", "alert notification failed"))
}

func TestAlertmanagerGivesUpOnRejection(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "bad alert", http.StatusBadRequest)
	}))
	defer srv.Close()
	cfg := testConfig(t.TempDir())
	cfg.Alertmanager.Endpoint = srv.URL
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(withAlert(running("b1", 1), "ERROR", 1).metrics())
	require.Eventually(t, func() bool { return h.logged("error", "alert notifications dropped") }, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(1), calls.Load(), "a 4xx is not retried")
}

func TestWebhook(t *testing.T) {
	wh := newReceiver(t, 0)
	cfg := testConfig(t.TempDir())
	cfg.Webhook.Endpoint = wh.srv.URL + "/hook"
	cfg.Webhook.MinLevel = "WARNING"
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(withAlert(running("b1", 1), "WARNING", 1).metrics())
	var p notify.WebhookPayload
	require.NoError(t, json.Unmarshal(wh.next(t), &p))
	assert.Equal(t, "POST /hook application/json ", <-wh.paths)
	assert.Equal(t, "1", p.Version)
	require.Len(t, p.Alerts, 1)
	assert.Equal(t, "firing", p.Alerts[0].Status)
	assert.Equal(t, "warning", p.Alerts[0].Labels["severity"])

	// An explicit 0 from the processor also clears the alert.
	h.consume(withAlert(running("b1", 2), "WARNING", 0).metrics())
	require.NoError(t, json.Unmarshal(wh.next(t), &p))
	assert.Equal(t, "resolved", p.Alerts[0].Status)
	assert.NotEmpty(t, p.Alerts[0].EndsAt)
}

func TestLevelChangeResolvesOldSeverity(t *testing.T) {
	am := newReceiver(t, 0)
	cfg := testConfig(t.TempDir())
	cfg.Alertmanager.Endpoint = am.srv.URL
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(withAlert(running("b1", 1), "ERROR", 1).metrics())
	require.Equal(t, "error", am.nextAlerts(t)[0].Labels["severity"])
	h.consume(withAlert(running("b1", 2), "CRITICAL", 1).metrics())
	var got []amAlert
	for len(got) < 2 {
		got = append(got, am.nextAlerts(t)...)
	}
	bySeverity := map[string]amAlert{}
	for _, a := range got {
		bySeverity[a.Labels["severity"]] = a
	}
	assert.False(t, bySeverity["error"].EndsAt.IsZero(), "old severity resolved")
	assert.True(t, bySeverity["critical"].EndsAt.IsZero(), "new severity firing")
}

func TestFiringAlertsAreResentAfterRestart(t *testing.T) {
	dir := t.TempDir()
	am := newReceiver(t, 0)
	cfg := testConfig(dir)
	cfg.Alertmanager.Endpoint = am.srv.URL
	h := newHarness(t, cfg, nil).mustStart()
	h.consume(withAlert(running("b1", 1), "ERROR", 1).metrics())
	am.next(t)
	h.stop()

	h2 := newHarness(t, cfg, nil).mustStart()
	// Restored and firing: sent at once, so that Alertmanager keeps it active.
	alerts := am.nextAlerts(t)
	require.Len(t, alerts, 1)
	assert.True(t, alerts[0].EndsAt.IsZero())
	h2.consume(running("b1", 2).metrics())
	assert.False(t, am.nextAlerts(t)[0].EndsAt.IsZero())
}
