package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/buildmon/buildmon/internal/metadata"
)

// Types of the two scrapers in the controllers' self-telemetry.
var (
	systemType    = component.MustNewType("system")
	resourcesType = component.MustNewType("resources")
)

// NewReceiver returns a component that runs two scraperhelper controllers pushing into next:
// CPU and memory every system.collection_interval, filesystems, disks and network interfaces
// every resources.collection_interval. With host.enabled false it does nothing. mbc is the
// receiver's `metrics:` section: a metric switched off there is neither read nor sent.
func NewReceiver(cfg *Config, mbc metadata.MetricsBuilderConfig, set receiver.Settings, next consumer.Metrics, opts ...Option) (component.Component, error) {
	if !cfg.Enabled {
		return &hostReceiver{}, nil
	}
	hostname := cfg.Hostname
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host.hostname is not set and the host name is unknown: %w", err)
		}
		hostname = h
	}
	src := newGopsutilSource(cfg.RootPath)
	system := newSystemScraper(newHostBase(cfg, hostname, mbc, set, src))
	resources, err := newResourcesScraper(newHostBase(cfg, hostname, mbc, set, src), cfg)
	if err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r := &hostReceiver{done: make(chan struct{})}
	for _, g := range []struct {
		typ      component.Type
		ctl      *scraperhelper.ControllerConfig
		start    component.StartFunc
		scrape   scraper.ScrapeMetricsFunc
		shutdown component.ShutdownFunc
	}{
		{systemType, &cfg.System, system.start, system.scrape, system.shutdown},
		{resourcesType, &cfg.Resources, resources.start, resources.scrape, resources.shutdown},
	} {
		sc, err := scraper.NewMetrics(g.scrape, scraper.WithStart(g.start), scraper.WithShutdown(g.shutdown))
		if err != nil {
			return nil, err
		}
		ctlOpts := []scraperhelper.ControllerOption{scraperhelper.AddMetricsScraper(g.typ, sc)}
		if o.stretch != nil {
			ticks := make(chan time.Time, 1) // holds one tick while the controller scrapes, as time.Ticker does
			r.tickers = append(r.tickers, stretchedTicker{interval: g.ctl.CollectionInterval, stretch: o.stretch, out: ticks})
			ctlOpts = append(ctlOpts, scraperhelper.WithTickerChannel(ticks))
		}
		ctl, err := scraperhelper.NewMetricsController(g.ctl, set, next, ctlOpts...)
		if err != nil {
			return nil, err
		}
		r.controllers = append(r.controllers, ctl)
	}
	return r, nil
}

// Option configures NewReceiver.
type Option func(*options)

type options struct {
	stretch func() int
}

// WithIntervalStretch stretches both collection intervals by the factor stretch returns
// (1: as configured), asked at every configured interval: the scrape schedule changes, the
// scrapers do not. The receiver's self-protection uses it to scrape less often under
// pressure.
func WithIntervalStretch(stretch func() int) Option {
	return func(o *options) { o.stretch = stretch }
}

// stretchedTicker ticks every interval × stretch(): it wakes every interval and sends a tick
// once stretch() intervals have passed since the last. It is the controller's ticker
// channel (scraperhelper.WithTickerChannel), so the controller's schedule is the only
// thing that changes.
type stretchedTicker struct {
	interval time.Duration
	stretch  func() int
	out      chan time.Time
}

func (s stretchedTicker) run(done <-chan struct{}) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.forward(t.C, done)
}

// forward sends every stretch()-th tick of in to out, until done.
func (s stretchedTicker) forward(in <-chan time.Time, done <-chan struct{}) {
	waited := 0
	for {
		select {
		case <-done:
			return
		case now := <-in:
			waited++
			if waited < max(s.stretch(), 1) {
				continue
			}
			waited = 0
			select {
			case s.out <- now:
			default: // a tick is waiting already (the controller is still scraping): drop this one, as time.Ticker does
			}
		}
	}
}

// hostReceiver runs the controllers as one component.
type hostReceiver struct {
	controllers  []component.Component
	tickers      []stretchedTicker // with WithIntervalStretch: the controllers' tickers
	done         chan struct{}     // closed by Shutdown to stop the tickers
	tickersWG    sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error // set by the first Shutdown
}

func (r *hostReceiver) Start(ctx context.Context, host component.Host) error {
	for _, t := range r.tickers {
		r.tickersWG.Go(func() { t.run(r.done) })
	}
	for _, c := range r.controllers {
		if err := c.Start(ctx, host); err != nil {
			// A controller may be shut down once only, started or not.
			return errors.Join(err, r.Shutdown(ctx))
		}
	}
	return nil
}

// Shutdown stops every controller; calling it again does nothing.
func (r *hostReceiver) Shutdown(ctx context.Context) error {
	r.shutdownOnce.Do(func() {
		if r.done != nil {
			close(r.done)
			r.tickersWG.Wait()
		}
		var errs []error
		for _, c := range r.controllers {
			errs = append(errs, c.Shutdown(ctx))
		}
		r.shutdownErr = errors.Join(errs...)
	})
	return r.shutdownErr
}
