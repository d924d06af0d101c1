package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/buildmon/buildmon/cmd/buildmon/internal/collector"
)

// Environment variables, each the default of the flag of the same name.
const (
	envEventsURL    = "BUILDMON_EVENTS_URL"
	envStatusURL    = "BUILDMON_STATUS_URL"
	envGateways     = "BUILDMON_GATEWAY_URLS"
	envToken        = "BUILDMON_TOKEN"
	envBuildID      = "BUILDMON_BUILD_ID"
	envTimeout      = "BUILDMON_TIMEOUT"
	envPollInterval = "BUILDMON_POLL_INTERVAL"
	envMaxPause     = "BUILDMON_MAX_PAUSE"
	envStrict       = "BUILDMON_STRICT"
	envPipeline     = "BUILDMON_PIPELINE"
	envHost         = "BUILDMON_HOST"
	// envPhase is set by `buildmon phase` for the wrapped command: the phase it runs in.
	envPhase = "BUILDMON_PHASE"
)

// Defaults of the common options.
const (
	defaultEventsURL    = "http://127.0.0.1:4320"
	defaultStatusURL    = "http://127.0.0.1:4321"
	defaultTimeout      = 2 * time.Second
	defaultPollInterval = 2 * time.Second
)

// options are the flags every subcommand takes.
type options struct {
	eventsURL    string
	statusURL    string
	token        string
	buildID      string
	host         string
	timeout      time.Duration
	pollInterval time.Duration
	maxPause     time.Duration
	strict       bool
}

// loadOptions returns the defaults overridden by the environment. A malformed variable is
// reported and ignored: configuration of monitoring must not fail a build.
func (a *app) loadOptions() options {
	o := options{
		eventsURL:    defaultEventsURL,
		statusURL:    defaultStatusURL,
		timeout:      defaultTimeout,
		pollInterval: defaultPollInterval,
	}
	str := func(key string, dst *string) {
		if v := strings.TrimSpace(a.getenv(key)); v != "" {
			*dst = v
		}
	}
	str(envEventsURL, &o.eventsURL)
	str(envStatusURL, &o.statusURL)
	str(envToken, &o.token)
	str(envBuildID, &o.buildID)
	str(envHost, &o.host)
	dur := func(key string, dst *time.Duration, allowZero bool) {
		v := strings.TrimSpace(a.getenv(key))
		if v == "" {
			return
		}
		d, err := parseDuration(v)
		if err != nil || d < 0 || (d == 0 && !allowZero) {
			a.warnf("ignoring %s=%q: want a positive duration such as 2s or 500ms", key, v)
			return
		}
		*dst = d
	}
	dur(envTimeout, &o.timeout, false)
	dur(envPollInterval, &o.pollInterval, false)
	dur(envMaxPause, &o.maxPause, true)
	if v := strings.TrimSpace(a.getenv(envStrict)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			a.warnf("ignoring %s=%q: want true or false", envStrict, v)
		} else {
			o.strict = b
		}
	}
	return o
}

// register adds the common flags to fs, with the current values as defaults.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.eventsURL, "events-url", o.eventsURL, "events API base URL (env "+envEventsURL+")")
	fs.StringVar(&o.statusURL, "status-url", o.statusURL, "status API base URL (env "+envStatusURL+")")
	fs.Var(secretFlag{&o.token}, "token", "bearer token for both APIs (env "+envToken+")")
	fs.StringVar(&o.buildID, "build-id", o.buildID, "build id; default from the CI environment (env "+envBuildID+")")
	fs.StringVar(&o.host, "host", o.host, "host name the build runs on; default the machine's (env "+envHost+")")
	fs.Var(durationFlag{&o.timeout}, "timeout", "`duration` budget of one call to the collector, retries included (env "+envTimeout+")")
	fs.Var(durationFlag{&o.pollInterval}, "poll-interval", "how often phase and status --watch read the build status, a `duration` (env "+envPollInterval+")")
	fs.Var(durationFlag{&o.maxPause}, "max-pause", "continue a paused command after this `duration`; 0 waits until the pause clears (env "+envMaxPause+")")
	fs.BoolVar(&o.strict, "strict", o.strict, "exit 1 when the collector is unreachable or refuses an event (env "+envStrict+")")
}

func (o *options) validate() error {
	var errs []error
	if o.timeout <= 0 {
		errs = append(errs, errors.New("--timeout must be positive"))
	}
	if o.pollInterval <= 0 {
		errs = append(errs, errors.New("--poll-interval must be positive"))
	}
	if o.maxPause < 0 {
		errs = append(errs, errors.New("--max-pause must not be negative"))
	}
	for _, u := range []struct{ flag, value string }{{"--events-url", o.eventsURL}, {"--status-url", o.statusURL}} {
		if !strings.HasPrefix(u.value, "http://") && !strings.HasPrefix(u.value, "https://") {
			errs = append(errs, fmt.Errorf("%s %q must start with http:// or https://", u.flag, u.value))
		}
	}
	return errors.Join(errs...)
}

func (o *options) client() *collector.Client {
	return collector.NewClient(collector.Config{
		EventsURL: o.eventsURL,
		StatusURL: o.statusURL,
		Token:     o.token,
		Timeout:   o.timeout,
		UserAgent: "buildmon-cli/" + version,
	})
}

// parseDuration takes a Go duration ("1m30s") or a plain number of seconds ("5", "0.5").
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 2s or 500ms")
	}
	*f.d = d
	return nil
}

// secretFlag is a string flag whose value usage output never shows.
type secretFlag struct{ s *string }

func (f secretFlag) String() string { return "" }

func (f secretFlag) Set(s string) error {
	*f.s = s
	return nil
}

// listFlag collects every use of a repeatable flag.
type listFlag struct{ values *[]string }

func (f listFlag) String() string {
	if f.values == nil {
		return ""
	}
	return strings.Join(*f.values, ",")
}

func (f listFlag) Set(s string) error {
	*f.values = append(*f.values, s)
	return nil
}

// parseInterspersed parses flags anywhere among args and returns the other arguments in
// order; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
