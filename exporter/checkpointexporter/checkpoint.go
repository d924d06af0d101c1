package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/audit"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/clock"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/metadata"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/notify"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/state"
	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/statusapi"
	"github.com/buildmon/buildmon/internal/access"
	"github.com/buildmon/buildmon/internal/connlimit"
)

// checkpointExporter reduces metrics into the monitoring state (consumeMetrics, a cheap
// in-memory step), and owns the goroutines that write checkpoints and reports (writer),
// send notifications (one dispatcher per target) and serve the status API (server).
type checkpointExporter struct {
	cfg       *Config
	set       exporter.Settings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder

	// Injected by tests before Start.
	clock     clock.Clock
	fs        checkpoint.FS
	lookupEnv func(string) (string, bool)
	// afterFlush, if set, is called after every flush with its start time.
	afterFlush func(at time.Time, err error)

	// Set up by Start, read-only afterwards.
	dir        string
	codec      checkpoint.Codec
	store      *state.Store
	gens       *checkpoint.Generations
	writer     *checkpoint.Writer
	audit      *audit.Log
	notifiers  []*notify.Dispatcher
	server     *http.Server
	serverDone chan struct{}
	listenAddr net.Addr
	conns      *connlimit.Limiter // the status API's connections; nil until it listens
	authID     string

	// hosts read host metrics between batches (their counters' last values); safe for
	// concurrent use.
	hosts *hostReaders

	// pendingRemovals are report folders of removed builds still to delete; owned by the
	// writer goroutine (flush).
	pendingRemovals []string
	// tracked is the builds count last reported to the builds_tracked counter.
	tracked atomic.Int64
	// auditFailing is set while audit log writes fail (logged once per streak).
	auditFailing atomic.Bool
	// final is set for the last flush at shutdown, which also writes changes that make no
	// checkpoint due by themselves.
	final atomic.Bool
}

func newCheckpointExporter(cfg *Config, set exporter.Settings) (*checkpointExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &checkpointExporter{
		cfg: cfg, set: set, logger: set.Logger, telemetry: tb,
		clock: clock.System{}, fs: checkpoint.OS{}, lookupEnv: os.LookupEnv,
		hosts: newHostReaders(cfg.MaxBuilds),
	}, nil
}

// loadKeys returns the keyring, or nil when encryption is off.
func (e *checkpointExporter) loadKeys() (*encryption.Keyring, error) {
	enc := e.cfg.Encryption
	if !enc.Enabled() {
		return nil, nil
	}
	current, err := encryption.LoadKey(encryption.Source{File: enc.KeyFile, Env: enc.KeyEnv}, e.lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}
	var previous []*encryption.Key
	for i, k := range enc.PreviousKeys {
		key, err := encryption.LoadKey(encryption.Source{File: k.KeyFile, Env: k.KeyEnv}, e.lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("encryption.previous_keys[%d]: %w", i, err)
		}
		previous = append(previous, key)
	}
	return encryption.NewKeyring(current, previous...), nil
}

func (e *checkpointExporter) start(ctx context.Context, host component.Host) (err error) {
	keys, err := e.loadKeys()
	if err != nil {
		return err
	}
	e.dir = filepath.Clean(e.cfg.Directory)
	if err := e.fs.MkdirAll(filepath.Join(e.dir, reportsDir), 0o750); err != nil {
		return fmt.Errorf("creating checkpoint directory %q: %w", e.dir, err)
	}
	// A checkpoint holds at most what max_builds builds encode to; a file that decodes to
	// more is corrupt, however small it is compressed.
	e.codec = checkpoint.Codec{Keyring: keys, MaxPayload: state.PayloadLimit(e.cfg.MaxBuilds)}
	var namer state.Namer = plainNamer{}
	if keys != nil {
		namer = hashedNamer{keys: keys}
	}
	e.store = state.New(e.clock, state.Limits{
		MaxBuilds:         e.cfg.MaxBuilds,
		FinishedRetention: e.cfg.Retention.FinishedBuilds,
		MaxReportsBytes:   e.cfg.Retention.MaxReportsBytes,
		AlertStaleAfter:   e.cfg.AlertStaleAfter,
	}, namer)
	e.gens = &checkpoint.Generations{Dir: e.dir, FS: e.fs, Codec: e.codec, Keep: e.cfg.Generations}
	if err := e.restore(); err != nil {
		return err
	}

	auditPath := e.cfg.AuditLog.Path
	if auditPath == "" {
		auditPath = filepath.Join(e.dir, "audit.log")
	}
	e.audit = audit.New(auditPath, e.cfg.AuditLog.MaxBytes)

	// Undo what started if a later step fails.
	defer func() {
		if err != nil {
			_ = e.shutdown(context.Background())
		}
	}()
	for _, n := range []struct {
		cfg    *NotifierConfig
		sender func(*http.Client) notify.Sender
	}{
		{&e.cfg.Alertmanager, func(c *http.Client) notify.Sender {
			return &notify.AlertmanagerSender{Client: c, BaseURL: e.cfg.Alertmanager.Endpoint}
		}},
		{&e.cfg.Webhook, func(c *http.Client) notify.Sender {
			ws := &notify.WebhookSender{Client: c, URL: e.cfg.Webhook.Endpoint}
			if secrets := e.cfg.Webhook.Signing.secrets(); secrets != nil {
				ws.Signer = &notify.Signer{Secrets: secrets, Now: e.clock.Now}
			}
			return ws
		}},
	} {
		if !n.cfg.enabled() {
			continue
		}
		httpClient, cerr := n.cfg.ToClient(ctx, host.GetExtensions(), e.set.TelemetrySettings)
		if cerr != nil {
			return fmt.Errorf("creating the HTTP client for %s: %w", n.sender(nil).Target(), cerr)
		}
		d := e.newDispatcher(n.cfg, n.sender(httpClient))
		d.Notify(e.store.FiringAlerts())
		d.Start()
		e.notifiers = append(e.notifiers, d)
	}

	e.writer = checkpoint.NewWriter(e.clock, e.cfg.Interval, minWriteGap, e.flush, e.logger)
	e.writer.Start()
	return e.startServer(ctx, host)
}

// restore loads the newest valid checkpoint and says in the log what happened.
func (e *checkpointExporter) restore() error {
	res, err := e.gens.Restore(e.store.Load)
	if err != nil {
		return err
	}
	for _, c := range res.Corrupt {
		if c.Sealed {
			e.logger.Error("checkpoint file is sealed with a key that is not configured; moved it aside and used an older generation (configure the key and rename it back to use it)",
				zap.String("path", c.Path), zap.String("moved_to", c.MovedTo), zap.Error(c.Err))
			continue
		}
		e.logger.Error("checkpoint file is corrupt; moved it aside and trying the previous one",
			zap.String("path", c.Path), zap.String("moved_to", c.MovedTo), zap.Error(c.Err))
	}
	if n := e.store.LoadTrimmed(); n > 0 {
		e.logger.Warn("the checkpoint holds more builds, hosts or tombstones than max_builds; left out the oldest",
			zap.Int("left_out", n), zap.Int("max_builds", e.cfg.MaxBuilds))
	}
	switch {
	case res.Path != "":
		e.logger.Info("restored state from checkpoint", zap.String("path", res.Path), zap.Int("builds", e.store.Len()))
	case res.Found > 0:
		e.logger.Error("all checkpoint files are corrupt; starting with an empty state",
			zap.String("directory", e.dir), zap.Int("corrupt_files", len(res.Corrupt)))
	default:
		e.logger.Info("no checkpoint found; starting with an empty state", zap.String("directory", e.dir))
	}
	e.updateTracked()
	return nil
}

func (e *checkpointExporter) startServer(ctx context.Context, host component.Host) error {
	sc := e.cfg.Status.ServerConfig
	if sc.NetAddr.Endpoint == "" {
		return nil
	}
	if sc.Auth.HasValue() {
		e.authID = sc.Auth.Get().Config.AuthenticatorID.String()
	}
	ln, err := sc.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("status API: listening on %q: %w", sc.NetAddr.Endpoint, err)
	}
	acc := statusapi.Access{Policy: access.New(e.cfg.Status.Access), Audit: access.NewAudit(e.logger), AuthID: e.authID, Clock: e.clock}
	handler := statusapi.Subject(statusapi.NewHandlerWithAccess(e, acc), e.subject)
	srv, err := sc.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, handler)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("status API: %w", err)
	}
	e.conns = connlimit.New(e.cfg.Status.MaxConnections)
	e.conns.Install(srv)
	// Outermost, so that requests the authentication rejects are audited too.
	srv.Handler = statusapi.Audit(srv.Handler, e.clock, e.recordRequest)
	e.server, e.serverDone, e.listenAddr = srv, make(chan struct{}), ln.Addr()
	e.logger.Info("status API listening", zap.String("endpoint", ln.Addr().String()))
	go func() {
		defer close(e.serverDone)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("status API server stopped", zap.Error(err))
		}
	}()
	return nil
}

func (e *checkpointExporter) shutdown(ctx context.Context) error {
	var errs []error
	if e.server != nil {
		if err := e.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping the status API: %w", err))
			_ = e.server.Close()
		}
		<-e.serverDone
		e.server = nil
	}
	if e.writer != nil {
		// Stop runs the final checkpoint (its failure is already logged by the writer); the
		// notifiers stop after it, as its retention pass may resolve alerts.
		e.final.Store(true)
		if err := e.writer.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("writing the final checkpoint: %w", err))
		}
		e.writer = nil
	}
	for _, d := range e.notifiers {
		d.Stop()
	}
	e.notifiers = nil
	if e.audit != nil {
		_ = e.audit.Close()
	}
	e.telemetry.Shutdown()
	return errors.Join(errs...)
}

// consumeMetrics reduces a batch into the state; notifications and writes happen elsewhere.
func (e *checkpointExporter) consumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if e.store == nil {
		return errors.New("checkpoint exporter is not started")
	}
	res := e.store.Apply(translate(md, e.clock.Now().UnixNano(), e.hosts))
	e.notify(res.Changes)
	if res.Ignored > 0 {
		e.logger.Debug("left out builds, hosts, phases, alerts or attributes beyond the state's bounds", zap.Int("ignored", res.Ignored))
	}
	if res.Evicted > 0 {
		e.telemetry.ExporterCheckpointBuildsEvicted.Add(ctx, int64(res.Evicted))
		e.logger.Warn("max_builds reached: evicted the oldest builds", zap.Int("evicted", res.Evicted), zap.Int("max_builds", e.cfg.MaxBuilds))
	}
	e.updateTracked()
	if res.Urgent && e.writer != nil {
		e.writer.Request()
	}
	return nil
}

func (e *checkpointExporter) notify(changes []state.AlertChange) {
	if len(changes) == 0 {
		return
	}
	for _, d := range e.notifiers {
		d.Notify(changes)
	}
}

func (e *checkpointExporter) updateTracked() {
	n := int64(e.store.Len())
	if delta := n - e.tracked.Swap(n); delta != 0 {
		e.telemetry.ExporterCheckpointBuildsTracked.Add(context.Background(), delta)
	}
}

// flush runs on the writer goroutine: it applies retention, writes due reports, and writes a
// checkpoint if the state changed.
func (e *checkpointExporter) flush() (err error) {
	ctx := context.Background()
	if e.afterFlush != nil {
		start := e.clock.Now()
		defer func() { e.afterFlush(start, err) }()
	}
	exp := e.store.Expire()
	e.notify(exp.Changes)
	evicted := 0
	for _, r := range exp.Removed {
		if r.Evicted {
			evicted++
		}
		if r.ReportDir != "" {
			e.pendingRemovals = append(e.pendingRemovals, r.ReportDir)
		}
	}
	if evicted > 0 {
		e.telemetry.ExporterCheckpointBuildsEvicted.Add(ctx, int64(evicted))
		e.logger.Info("retention.max_reports_bytes reached: removed the oldest finished builds", zap.Int("builds", evicted))
	}
	if len(exp.Removed) > 0 {
		e.updateTracked()
	}
	var errs []error
	kept := e.pendingRemovals[:0]
	for _, dir := range e.pendingRemovals {
		if err := e.fs.RemoveAll(filepath.Join(e.dir, reportsDir, dir)); err != nil {
			kept = append(kept, dir)
			errs = append(errs, fmt.Errorf("removing reports of an expired build: %w", err))
		}
	}
	e.pendingRemovals = kept

	for _, job := range e.store.DueReports() {
		n, err := e.writeReport(job)
		if err != nil {
			errs = append(errs, fmt.Errorf("writing report: %w", err))
			continue
		}
		e.store.ReportWritten(job, int64(n))
		e.telemetry.ExporterCheckpointReportsWritten.Add(ctx, 1)
		e.telemetry.ExporterCheckpointBytesWritten.Add(ctx, int64(n))
	}

	if e.store.Dirty() || (e.final.Load() && e.store.Touched()) {
		payload, version, err := e.store.Snapshot()
		if err == nil {
			var n int
			n, err = e.gens.Write(payload)
			if err == nil {
				e.store.MarkWritten(version)
				e.telemetry.ExporterCheckpointCheckpointsWritten.Add(ctx, 1)
				e.telemetry.ExporterCheckpointBytesWritten.Add(ctx, int64(n))
			}
		}
		if err != nil {
			e.telemetry.ExporterCheckpointCheckpointsFailed.Add(ctx, 1)
			errs = append(errs, fmt.Errorf("writing checkpoint in %q: %w", e.dir, err))
		}
	}
	return errors.Join(errs...)
}

// Builds, BuildStatus, Hosts and Host implement statusapi.Source (Report is in files.go).
func (e *checkpointExporter) Builds(f state.BuildFilter) []state.BuildSummary {
	return e.store.Builds(f)
}

func (e *checkpointExporter) BuildStatus(id string) (state.BuildStatus, bool) {
	return e.store.BuildStatus(id)
}

func (e *checkpointExporter) Hosts() []state.HostStatus { return e.store.Hosts() }

func (e *checkpointExporter) Host(name string) (state.HostStatus, bool) { return e.store.Host(name) }

// subject returns the authenticated subject of a status API request, as access rules name
// it (access.Identify): the authenticator's subject; for authenticators that set none
// (bearertokenauth), the authenticator's id with a short fingerprint of the credential, so
// that the audit log tells tokens apart without revealing them; else a verified client
// certificate's cn:<name>; "anonymous" without any.
func (e *checkpointExporter) subject(r *http.Request) string {
	return access.Identify(r, e.authID).Subject()
}

func (e *checkpointExporter) recordRequest(rec audit.Record) {
	e.telemetry.ExporterCheckpointStatusRequests.Add(context.Background(), 1,
		metric.WithAttributes(attribute.Int("http.response.status_code", rec.Status)))
	e.writeAudit(rec)
}

func (e *checkpointExporter) writeAudit(rec audit.Record) {
	err := e.audit.Write(rec)
	switch {
	case err != nil:
		e.telemetry.ExporterCheckpointAuditFailed.Add(context.Background(), 1)
		if !e.auditFailing.Swap(true) {
			e.logger.Error("audit log write failed", zap.String("path", e.audit.Path()), zap.Error(err))
		}
	case e.auditFailing.Swap(false):
		e.logger.Info("audit log writes recovered", zap.String("path", e.audit.Path()))
	}
}

func notes(alerts []notify.Alert) []audit.Note {
	out := make([]audit.Note, 0, len(alerts))
	for _, a := range alerts {
		st := "firing"
		if a.Resolved() {
			st = "resolved"
		}
		out = append(out, audit.Note{Rule: a.Rule, Level: a.Level, State: st, BuildID: a.BuildID, Host: a.Host})
	}
	return out
}

func (e *checkpointExporter) newDispatcher(cfg *NotifierConfig, sender notify.Sender) *notify.Dispatcher {
	retry := cfg.RetryOnFailure
	targetAttr := func(target string) metric.AddOption {
		return metric.WithAttributes(attribute.String("target", target))
	}
	return notify.NewDispatcher(notify.Settings{
		Sender:         sender,
		Clock:          e.clock,
		ResendInterval: cfg.ResendInterval,
		MinLevel:       notify.LevelRank(cfg.MinLevel),
		QueueSize:      cfg.QueueSize,
		Backoff: notify.Backoff{
			Enabled: retry.Enabled, InitialInterval: retry.InitialInterval, MaxInterval: retry.MaxInterval,
			Multiplier: retry.Multiplier, RandomizationFactor: retry.RandomizationFactor, MaxElapsedTime: retry.MaxElapsedTime,
		},
		Hooks: notify.Hooks{
			Sent: func(target, endpoint string, alerts []notify.Alert) {
				e.telemetry.ExporterCheckpointNotificationsSent.Add(context.Background(), int64(len(alerts)), targetAttr(target))
				e.logger.Debug("alert notification sent", zap.String("target", target), zap.Int("alerts", len(alerts)))
				e.writeAudit(audit.Record{
					Time: e.clock.Now().UTC().Format(time.RFC3339Nano), Kind: audit.KindNotification,
					Target: target, Endpoint: endpoint, Alerts: notes(alerts), Outcome: "sent",
				})
			},
			Failed: func(target, endpoint string, alerts []notify.Alert, err error, retrying bool) {
				e.telemetry.ExporterCheckpointNotificationsFailed.Add(context.Background(), 1, targetAttr(target))
				e.logger.Warn("alert notification failed", zap.String("target", target), zap.String("endpoint", endpoint),
					zap.Int("alerts", len(alerts)), zap.Bool("retrying", retrying), zap.Error(err))
			},
			Dropped: func(target, endpoint string, alerts []notify.Alert, reason error) {
				e.telemetry.ExporterCheckpointNotificationsDropped.Add(context.Background(), int64(len(alerts)), targetAttr(target))
				e.logger.Error("alert notifications dropped", zap.String("target", target), zap.String("endpoint", endpoint),
					zap.Int("alerts", len(alerts)), zap.Error(reason))
				e.writeAudit(audit.Record{
					Time: e.clock.Now().UTC().Format(time.RFC3339Nano), Kind: audit.KindNotification,
					Target: target, Endpoint: endpoint, Alerts: notes(alerts), Outcome: "dropped", Error: reason.Error(),
				})
			},
		},
	})
}

func zapPath(p string) zap.Field { return zap.String("path", p) }

func zapErr(err error) zap.Field { return zap.Error(err) }
