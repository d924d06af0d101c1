package hostscraper // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

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
func NewReceiver(cfg *Config, mbc metadata.MetricsBuilderConfig, set receiver.Settings, next consumer.Metrics) (component.Component, error) {
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
	system := newSystemScraper(newHostBase(cfg, hostname, mbc, set))
	resources, err := newResourcesScraper(newHostBase(cfg, hostname, mbc, set), cfg)
	if err != nil {
		return nil, err
	}
	r := &hostReceiver{}
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
		ctl, err := scraperhelper.NewMetricsController(g.ctl, set, next, scraperhelper.AddMetricsScraper(g.typ, sc))
		if err != nil {
			return nil, err
		}
		r.controllers = append(r.controllers, ctl)
	}
	return r, nil
}

// hostReceiver runs the controllers as one component.
type hostReceiver struct {
	controllers  []component.Component
	shutdownOnce sync.Once
	shutdownErr  error // set by the first Shutdown
}

func (r *hostReceiver) Start(ctx context.Context, host component.Host) error {
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
		var errs []error
		for _, c := range r.controllers {
			errs = append(errs, c.Shutdown(ctx))
		}
		r.shutdownErr = errors.Join(errs...)
	})
	return r.shutdownErr
}
