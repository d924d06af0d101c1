package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostmetrics"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
)

// clock is the receiver's time source; tests replace it.
type clock func() time.Time

// buildmonReceiver serves the events API, keeps the build registry, and emits build metrics
// and spans; host metrics run in their own component (internal/hostmetrics).
type buildmonReceiver struct {
	cfg       *Config
	set       receiver.Settings
	now       clock
	hostname  string
	registry  *events.Registry
	limiter   *clientLimiter
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport
	emitter   *emitter
	onRemove  func()

	metrics consumer.Metrics // set before Start by the factory
	traces  consumer.Traces  // set before Start by the factory

	startOnce, stopOnce sync.Once
	startErr            error
	server              *http.Server
	host                component.Component // host metrics, nil when off
	store               *registryStore      // nil without a storage extension
	wake                chan struct{}       // a request changed the registry
	done                chan struct{}       // closed by Shutdown to stop the loop
	loopDone            chan struct{}       // closed when the loop has stopped
	serveDone           chan struct{}       // closed when the HTTP server has stopped
}

func newReceiver(cfg *Config, set receiver.Settings, onRemove func()) (*buildmonReceiver, error) {
	hostname := cfg.Host.Hostname
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host.hostname is not set and the host name is unknown: %w", err)
		}
		hostname = h
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set})
	if err != nil {
		return nil, err
	}
	r := &buildmonReceiver{
		cfg:      cfg,
		set:      set,
		now:      time.Now,
		hostname: hostname,
		registry: events.NewRegistry(events.Options{
			MaxBuilds: cfg.MaxBuilds, MaxEventIDs: cfg.MaxEventIDsPerBuild,
			FinishedTTL: cfg.FinishedBuildTTL, DefaultHostname: hostname,
		}),
		limiter:   newClientLimiter(cfg.RateLimit),
		telemetry: tb,
		obsrecv:   obs,
		onRemove:  onRemove,
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		loopDone:  make(chan struct{}),
		serveDone: make(chan struct{}),
	}
	r.emitter = newEmitter(cfg.MetricsBuilderConfig, set)
	if err := tb.RegisterBuildmonReceiverBuildsTrackedCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(r.registry.Len()))
		return nil
	}); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *buildmonReceiver) setMetrics(next consumer.Metrics) { r.metrics = next }
func (r *buildmonReceiver) setTraces(next consumer.Traces)   { r.traces = next }

// Start runs once for both pipelines.
func (r *buildmonReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(ctx, host) })
	return r.startErr
}

func (r *buildmonReceiver) start(ctx context.Context, host component.Host) error {
	if r.cfg.Storage != nil {
		store, err := openRegistryStore(ctx, host, *r.cfg.Storage, r.set.ID)
		if err != nil {
			return err
		}
		r.store = store
		builds, err := store.load(ctx)
		if err != nil {
			return fmt.Errorf("restoring the build registry from %s: %w", r.cfg.Storage, err)
		}
		r.registry.Restore(builds)
		r.set.Logger.Info("build registry restored", zap.Int("builds", len(builds)), zap.String("storage", r.cfg.Storage.String()))
	}

	r.registry.RecordSpans(r.traces != nil)
	ln, err := r.cfg.Events.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("events.endpoint %s: %w", r.cfg.Events.NetAddr.Endpoint, err)
	}
	r.server, err = r.cfg.Events.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, r.handler(),
		confighttpErrorHandler(r))
	if err != nil {
		ln.Close()
		return err
	}
	go func() {
		defer close(r.serveDone)
		if err := r.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	r.set.Logger.Info("build events API listening", zap.String("endpoint", ln.Addr().String()))

	if r.cfg.Host.Enabled && r.metrics != nil {
		hm, err := hostmetrics.NewReceiver(&r.cfg.Host, r.cfg.MetricsBuilderConfig, r.set, r.metrics)
		if err != nil {
			return err
		}
		if err := hm.Start(ctx, host); err != nil {
			return fmt.Errorf("starting host metrics: %w", err)
		}
		r.host = hm
	}
	go r.loop()
	return nil
}

// Shutdown stops the server, flushes what changed, and stops the loop.
func (r *buildmonReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.onRemove != nil {
			r.onRemove()
		}
		if r.server != nil {
			err = errors.Join(err, r.server.Shutdown(ctx))
			<-r.serveDone
			close(r.done)
			<-r.loopDone
		}
		if r.host != nil {
			err = errors.Join(err, r.host.Shutdown(ctx))
		}
		if r.store != nil {
			err = errors.Join(err, r.store.close(ctx))
		}
		r.telemetry.Shutdown()
	})
	return err
}

// loop emits changed builds as soon as a request changes them, and every build each
// report_interval; it also persists the registry and expires finished builds.
func (r *buildmonReceiver) loop() {
	defer close(r.loopDone)
	ticker := time.NewTicker(r.cfg.ReportInterval)
	defer ticker.Stop()
	for {
		select {
		case <-r.done:
			r.flush(context.Background(), false)
			return
		case <-r.wake:
			r.flush(context.Background(), false)
		case <-ticker.C:
			r.registry.Expire(r.now())
			r.flush(context.Background(), true)
		}
	}
}

// flush persists and emits the changed builds (all of them when periodic).
func (r *buildmonReceiver) flush(ctx context.Context, all bool) {
	var changes []events.Change
	if all {
		changes = r.registry.All()
	} else {
		changes = r.registry.TakeDirty()
	}
	spans := r.registry.TakeSpans()
	if len(changes) == 0 && len(spans) == 0 {
		return
	}
	if r.store != nil {
		if err := r.store.save(ctx, changes); err != nil {
			r.set.Logger.Error("persisting the build registry failed", zap.Error(err))
		}
	}
	now := r.now()
	if r.metrics != nil {
		if md := r.emitter.metrics(changes, now); md.ResourceMetrics().Len() > 0 {
			obsCtx := r.obsrecv.StartMetricsOp(ctx)
			err := r.metrics.ConsumeMetrics(ctx, md)
			r.obsrecv.EndMetricsOp(obsCtx, "buildmon", md.DataPointCount(), err)
			if err != nil {
				r.set.Logger.Warn("build metrics not consumed", zap.Error(err))
			}
		}
	}
	if r.traces != nil && len(spans) > 0 {
		td := r.emitter.traces(spans)
		obsCtx := r.obsrecv.StartTracesOp(ctx)
		err := r.traces.ConsumeTraces(ctx, td)
		r.obsrecv.EndTracesOp(obsCtx, "buildmon", td.SpanCount(), err)
		if err != nil {
			r.set.Logger.Warn("build spans not consumed", zap.Error(err))
		}
	}
}

// notify wakes the loop after a request changed the registry.
func (r *buildmonReceiver) notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// clientKey identifies the client of a request for rate limiting: its remote address.
func clientKey(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}
