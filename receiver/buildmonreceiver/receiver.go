package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/buildmon/buildmon/internal/access"
	"github.com/buildmon/buildmon/internal/connlimit"
	"github.com/buildmon/buildmon/internal/selfprotect"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/metadata"
)

// clock is the receiver's time source: the default time of events that carry none, the end
// of running durations, and the rate limiter's time. Tests replace it.
type clock func() time.Time

// buildmonReceiver serves the events API, keeps the build registry, and emits build metrics
// and spans; host metrics run in their own component (internal/hostscraper).
type buildmonReceiver struct {
	cfg       *Config
	set       receiver.Settings
	now       clock
	hostname  string
	registry  *events.Registry
	limiter   *clientLimiter
	policy    *access.Policy // nil without access rules
	audit     *access.Audit
	authID    string // the events API's authenticator, "" without one
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport
	emitter   *emitter
	onRemove  func()

	metrics consumer.Metrics // set before Start by the factory
	traces  consumer.Traces  // set before Start by the factory

	startOnce, stopOnce sync.Once
	startErr            error
	server              *http.Server        // nil until the events API listens
	conns               *connlimit.Limiter  // the events API's connections; nil until it listens
	host                component.Component // host metrics, nil when off
	loopRunning         bool                // the emit loop was started
	wake                chan struct{}       // a request changed the registry
	done                chan struct{}       // closed by Shutdown to stop the loop
	loopDone            chan struct{}       // closed when the loop has stopped
	serveDone           chan struct{}       // closed when the HTTP server has stopped

	persistent bool           // a storage extension is configured; set in Start
	storeMu    sync.Mutex     // serializes the writes of the committer and the loop
	store      *registryStore // guarded by storeMu; nil without storage and after Shutdown

	// The committer (commitLoop) runs with storage: requests hand it their events.
	commits    chan *commitRequest // unbuffered: waiting senders are the queue
	commitStop chan struct{}       // closed by Shutdown once the server stopped
	commitDone chan struct{}       // closed when the committer has stopped
	committing bool                // the committer was started

	// Self-protection, when self_protection sets a budget.
	usage       selfprotect.Reader      // the collector's own usage; tests replace it before Start
	protect     *selfprotect.Controller // nil when self_protection is off
	protectDone chan struct{}           // closed when protectLoop has stopped; nil if it never ran
	stepSpans   uint64                  // step spans seen while sampling; only the emitting goroutine uses it
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
		limiter:    newClientLimiter(cfg.RateLimit),
		policy:     access.New(cfg.Events.Access),
		audit:      access.NewAudit(set.Logger),
		telemetry:  tb,
		obsrecv:    obs,
		onRemove:   onRemove,
		wake:       make(chan struct{}, 1),
		commits:    make(chan *commitRequest),
		commitStop: make(chan struct{}),
		commitDone: make(chan struct{}),
		done:       make(chan struct{}),
		loopDone:   make(chan struct{}),
		serveDone:  make(chan struct{}),
	}
	if cfg.Events.Auth.HasValue() {
		r.authID = cfg.Events.Auth.Get().Config.AuthenticatorID.String()
	}
	r.emitter = newEmitter(cfg.MetricsBuilderConfig, set)
	if err := tb.RegisterReceiverBuildmonBuildsTrackedCallback(func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(int64(r.registry.Len()))
		return nil
	}); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *buildmonReceiver) setMetrics(next consumer.Metrics) { r.metrics = next }
func (r *buildmonReceiver) setTraces(next consumer.Traces)   { r.traces = next }

// Start runs once for both pipelines. If it fails, Shutdown releases what it had started.
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
		builds, unreadable, err := store.load(ctx)
		if err != nil {
			_ = store.close(ctx)
			return fmt.Errorf("restoring the build registry from %s: %w", r.cfg.Storage, err)
		}
		if unreadable != nil {
			// The builds that can be read are restored; events for the others get 404.
			r.set.Logger.Error("stored builds unreadable", zap.String("storage", r.cfg.Storage.String()), zap.Error(unreadable))
		}
		r.store, r.persistent = store, true
		if dropped := r.registry.Restore(builds, r.now()); len(dropped) > 0 {
			r.set.Logger.Warn("stored builds beyond max_builds dropped", zap.Int("dropped", len(dropped)), zap.Int("max_builds", r.cfg.MaxBuilds))
		}
		r.set.Logger.Info("build registry restored", zap.Int("builds", r.registry.Len()), zap.String("storage", r.cfg.Storage.String()))
	}
	r.registry.RecordSpans(r.traces != nil)
	if r.persistent {
		r.committing = true
		go r.commitLoop()
	}

	if sp := &r.cfg.SelfProtection; sp.enabled() {
		if r.usage == nil {
			reader, err := selfprotect.NewProcessReader()
			if err != nil {
				return err
			}
			r.usage = reader
		}
		r.protect = selfprotect.NewController(selfprotect.Budget{
			CPUShare: sp.CPUShare, MemoryBytes: uint64(sp.MemoryMiB) << 20, //nolint:gosec // validated ≥ 0
			ReleaseRatio: sp.ReleaseRatio, ReleaseChecks: sp.ReleaseChecks,
		}, r.usage, 0)
	}

	// The loop runs first: restored builds are emitted at once, and Shutdown can rely on it.
	r.loopRunning = true
	go r.loop()
	r.notify()
	if r.protect != nil {
		r.protectDone = make(chan struct{})
		go r.protectLoop(r.cfg.SelfProtection.CheckInterval)
	}

	ln, err := r.cfg.Events.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("events.endpoint %s: %w", r.cfg.Events.NetAddr.Endpoint, err)
	}
	server, err := r.cfg.Events.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, r.handler(),
		confighttpErrorHandler(r))
	if err != nil {
		ln.Close()
		return err
	}
	r.conns = connlimit.New(r.cfg.Events.MaxConnections)
	r.conns.Install(server)
	r.server = server
	go func() {
		defer close(r.serveDone)
		if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	r.set.Logger.Info("build events API listening", zap.String("endpoint", ln.Addr().String()))

	if r.cfg.Host.Enabled && r.metrics != nil {
		var opts []hostscraper.Option
		if r.protect != nil {
			opts = append(opts, hostscraper.WithIntervalStretch(r.scrapeStretch))
		}
		hm, err := hostscraper.NewReceiver(&r.cfg.Host, r.cfg.MetricsBuilderConfig, r.set, r.metrics, opts...)
		if err != nil {
			return fmt.Errorf("host metrics: %w", err)
		}
		if err := hm.Start(ctx, host); err != nil {
			return fmt.Errorf("starting host metrics: %w", err)
		}
		r.host = hm
	}
	return nil
}

// Shutdown stops the events API, then the host metrics, persists and emits what changed last,
// and closes the storage client. It is safe after a failed Start and without one.
func (r *buildmonReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.onRemove != nil {
			r.onRemove()
		}
		if r.server != nil {
			err = errors.Join(err, r.server.Shutdown(ctx))
			<-r.serveDone
		}
		if r.committing {
			close(r.commitStop)
			<-r.commitDone
		}
		if r.host != nil {
			err = errors.Join(err, r.host.Shutdown(ctx))
		}
		if r.loopRunning {
			close(r.done)
			<-r.loopDone
			if r.protectDone != nil {
				<-r.protectDone
			}
		}
		if r.store != nil {
			r.storeMu.Lock()
			err = errors.Join(err, r.store.close(ctx))
			r.store = nil
			r.storeMu.Unlock()
		}
		r.telemetry.Shutdown()
	})
	return err
}
