package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/buildmon/buildmon/internal/access"
	bmetadata "github.com/buildmon/buildmon/internal/metadata"
	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/hostscraper"
)

// Config of the buildmon receiver.
type Config struct {
	// Events is the HTTP server of the build events API (endpoint, tls, auth, max_request_body_size,
	// timeouts…) and its connection cap.
	Events EventsConfig `mapstructure:"events"`
	// ReportInterval is how often every tracked build's metrics are emitted, besides on each change.
	ReportInterval time.Duration `mapstructure:"report_interval"`
	// FinishedBuildTTL is how long a finished build stays in the registry (late retries still
	// count once, and the last state is re-emitted) before it leaves memory and storage.
	FinishedBuildTTL time.Duration `mapstructure:"finished_build_ttl"`
	// MaxBuilds caps the builds tracked at once; a new build past it gets 429.
	MaxBuilds int `mapstructure:"max_builds"`
	// MaxEventIDsPerBuild is how many recent event ids each build remembers for idempotent retries.
	MaxEventIDsPerBuild int `mapstructure:"max_event_ids_per_build"`
	// MaxClockSkew bounds how far an event's time may lie from the collector's clock, into
	// the future or the past; an event beyond it gets 400. 0 sets no such bound (times must
	// still be between 1970 and 2261).
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
	// RateLimit bounds the events each client (remote address) may send per second.
	RateLimit RateLimitConfig `mapstructure:"rate_limit"`
	// Storage is the storage extension (e.g. file_storage) that keeps the registry across restarts.
	Storage *component.ID `mapstructure:"storage"`
	// Host configures the host resource metrics.
	Host hostscraper.Config `mapstructure:"host"`
	// SelfProtection is the collector's budget for its own CPU and memory, and what it sheds
	// when over it.
	SelfProtection SelfProtectionConfig `mapstructure:"self_protection"`

	bmetadata.MetricsBuilderConfig `mapstructure:",squash"`
}

// EventsConfig is the events API's HTTP server: confighttp's settings and a cap on connections.
type EventsConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// MaxConnections caps the connections held open at once, so that a flood of (slow)
	// clients cannot take every file descriptor or unbounded memory: at the cap, the connection
	// that has waited longest without a request is closed to make room, and a new connection
	// is refused only while every connection has a request in flight. 0 sets no cap.
	MaxConnections int `mapstructure:"max_connections"`
	// Access grants subjects events:write (POST /v1/events) and status:read (GET
	// /v1/registry/builds/{id}) on pipelines and hosts; without rules it is not checked.
	Access access.Config `mapstructure:"access"`
}

// accessEnv is what the events API offers access rules.
func (c *EventsConfig) accessEnv() access.Env {
	return access.Env{
		Prefix:      "events.access",
		Served:      []access.Action{access.EventsWrite, access.StatusRead},
		Auth:        c.Auth.HasValue(),
		ClientCerts: c.TLS.HasValue() && c.TLS.Get().ClientCAFile != "",
	}
}

// RateLimitConfig is a token bucket per client; events_per_second 0 switches it off.
type RateLimitConfig struct {
	EventsPerSecond float64 `mapstructure:"events_per_second"`
	Burst           int     `mapstructure:"burst"`
	// LifecycleReserve is the share of burst kept for lifecycle events (build_started,
	// phase_started, phase_completed, phase_failed, phase_skipped, build_finished): a request
	// of step_completed and milestone_reached events only must leave floor(lifecycle_reserve ×
	// burst) tokens in the client's bucket, a request that carries a lifecycle event may take
	// them. 0 keeps nothing back.
	LifecycleReserve float64 `mapstructure:"lifecycle_reserve"`
}

// reservedTokens are the tokens of each bucket that only requests carrying a lifecycle event
// may take.
func (c RateLimitConfig) reservedTokens() int {
	return int(math.Floor(c.LifecycleReserve * float64(c.Burst)))
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration and reports every problem at once.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Events.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("events.endpoint must not be empty"))
	}
	if cfg.Events.MaxRequestBodySize < 0 {
		errs = append(errs, errors.New("events.max_request_body_size must not be negative"))
	}
	if cfg.Events.MaxConnections < 0 {
		errs = append(errs, errors.New("events.max_connections must not be negative"))
	}
	if err := cfg.Events.Access.Validate(cfg.Events.accessEnv()); err != nil {
		errs = append(errs, err)
	}
	if cfg.ReportInterval <= 0 {
		errs = append(errs, errors.New("report_interval must be positive"))
	}
	if cfg.FinishedBuildTTL < 0 {
		errs = append(errs, errors.New("finished_build_ttl must not be negative"))
	}
	if cfg.MaxBuilds <= 0 {
		errs = append(errs, errors.New("max_builds must be positive"))
	}
	if cfg.MaxEventIDsPerBuild < 0 {
		errs = append(errs, errors.New("max_event_ids_per_build must not be negative"))
	}
	if cfg.MaxClockSkew < 0 {
		errs = append(errs, errors.New("max_clock_skew must not be negative"))
	}
	if cfg.RateLimit.EventsPerSecond < 0 {
		errs = append(errs, errors.New("rate_limit.events_per_second must not be negative"))
	}
	if cfg.RateLimit.EventsPerSecond > 0 && cfg.RateLimit.Burst < 1 {
		errs = append(errs, fmt.Errorf("rate_limit.burst must be at least 1 when rate_limit.events_per_second is set"))
	}
	if lr := cfg.RateLimit.LifecycleReserve; !(lr >= 0 && lr < 1) {
		errs = append(errs, fmt.Errorf("rate_limit.lifecycle_reserve must be at least 0 and less than 1, got %v", lr))
	}
	errs = append(errs, cfg.SelfProtection.validate()...)
	if err := cfg.Host.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
