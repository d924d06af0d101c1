// Package access is the authorization of buildmon's two HTTP APIs (design: access control):
// rules that grant subjects, as the authenticator or the client certificate names them,
// actions on pipelines and hosts by name or glob. The buildmon receiver (events API) and
// the checkpoint exporter (status API) use the same rules, the same subjects and the same
// audit lines. Without rules every authenticated request may do everything, as before
// rules existed.
package access // import "github.com/buildmon/buildmon/internal/access"

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Action is what a request does.
type Action string

// The actions rules grant.
const (
	// EventsWrite: post build events (events API) for a build of the pipeline and host.
	EventsWrite Action = "events:write"
	// StatusRead: read a build's status or a host (status API, the receiver's registry view).
	StatusRead Action = "status:read"
	// ReportsRead: read a build's or a phase's report (status API).
	ReportsRead Action = "reports:read"
)

// Actions are the known actions, in the order the README lists them.
var Actions = []Action{EventsWrite, StatusRead, ReportsRead}

// Target is what an action is done to: a build (of a pipeline, on a host) or a host.
type Target struct {
	// Pipeline is the build's pipeline; empty for a host target.
	Pipeline string
	// Host is the build's host, or the host of a host target.
	Host string
	// IsHost marks a host target (GET /v1/hosts…): only rules that list hosts grant it.
	IsHost bool
}

// Build is the target of a build of pipeline on host.
func Build(pipeline, host string) Target { return Target{Pipeline: pipeline, Host: host} }

// Host is the target of a host itself.
func Host(name string) Target { return Target{Host: name, IsHost: true} }

func (t Target) String() string {
	if t.IsHost {
		return "host " + quote(t.Host)
	}
	return "pipeline " + quote(t.Pipeline) + " on host " + quote(t.Host)
}

// Rule grants its subjects its actions on the builds and hosts it names. A build matches
// when its pipeline matches one of Pipelines (if any are listed) and its host one of Hosts
// (if any are listed); a host target matches only one of Hosts. Names are exact or
// path.Match globs; a lone "*" matches every name, also one with a "/".
type Rule struct {
	Subjects  []string `mapstructure:"subjects"`
	Actions   []string `mapstructure:"actions"`
	Pipelines []string `mapstructure:"pipelines"`
	Hosts     []string `mapstructure:"hosts"`
}

// Config is the access configuration of one API (events.access, status.access).
type Config struct {
	// Rules grant access; with none, access is not checked (every request that passes
	// authentication may do everything).
	Rules []Rule `mapstructure:"rules"`
}

// Enabled reports whether rules are configured.
func (c Config) Enabled() bool { return len(c.Rules) > 0 }

// Env is what a component offers the rules: the actions it serves and the kinds of subject
// its server can produce. Validate reports rules that can never match in it.
type Env struct {
	// Prefix is the config key of the access section, e.g. "events.access".
	Prefix string
	// Served are the actions the component's API checks.
	Served []Action
	// Auth: an authenticator is configured (auth.authenticator), so requests may carry
	// authenticator subjects.
	Auth bool
	// ClientCerts: client certificates are verified (tls.client_ca_file), so requests carry
	// certificate names.
	ClientCerts bool
}

// Validate reports every problem of the rules at once, each naming its key.
func (c Config) Validate(env Env) error {
	var errs []error
	if c.Enabled() && !env.Auth && !env.ClientCerts {
		errs = append(errs, fmt.Errorf("%s.rules: no request can have a subject: set auth.authenticator or tls.client_ca_file, or remove the rules", env.Prefix))
	}
	for i, r := range c.Rules {
		key := fmt.Sprintf("%s.rules[%d]", env.Prefix, i)
		errs = append(errs, r.validate(key, env)...)
	}
	return errors.Join(errs...)
}

func (r Rule) validate(key string, env Env) []error {
	var errs []error
	if len(r.Subjects) == 0 {
		errs = append(errs, fmt.Errorf("%s.subjects must name at least one subject", key))
	}
	for j, s := range r.Subjects {
		k := fmt.Sprintf("%s.subjects[%d]", key, j)
		if err := checkPattern(k, s); err != nil {
			errs = append(errs, err)
			continue
		}
		kind := subjectKind(s)
		switch {
		case kind == kindCert && !env.ClientCerts:
			errs = append(errs, fmt.Errorf("%s %q names a client certificate, but tls.client_ca_file is not set: no request has one", k, s))
		case kind == kindAuth && !env.Auth:
			errs = append(errs, fmt.Errorf("%s %q names an authenticator subject, but auth.authenticator is not set: no request has one (certificate names start with cn:, dns:, uri: or email:)", k, s))
		}
	}
	if len(r.Actions) == 0 {
		errs = append(errs, fmt.Errorf("%s.actions must name at least one action", key))
	}
	served, unknown := false, false
	for j, a := range r.Actions {
		if !slices.Contains(Actions, Action(a)) {
			errs = append(errs, fmt.Errorf("%s.actions[%d] %q is not an action; use %s", key, j, a, actionList(Actions)))
			unknown = true
			continue
		}
		served = served || slices.Contains(env.Served, Action(a))
	}
	if len(r.Actions) > 0 && !served && !unknown {
		errs = append(errs, fmt.Errorf("%s.actions: this API checks only %s; the rule can never match here", key, actionList(env.Served)))
	}
	if len(r.Pipelines) == 0 && len(r.Hosts) == 0 {
		errs = append(errs, fmt.Errorf("%s must list pipelines or hosts (use [\"*\"] for all)", key))
	}
	for j, p := range r.Pipelines {
		if err := checkPattern(fmt.Sprintf("%s.pipelines[%d]", key, j), p); err != nil {
			errs = append(errs, err)
		}
	}
	for j, h := range r.Hosts {
		if err := checkPattern(fmt.Sprintf("%s.hosts[%d]", key, j), h); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func checkPattern(key, p string) error {
	if strings.TrimSpace(p) == "" {
		return fmt.Errorf("%s must not be empty", key)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%s %q is not a valid glob (path.Match syntax: *, ?, [a-z], \\ escapes)", key, p)
	}
	return nil
}

func actionList(as []Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// Policy is a compiled Config. A nil Policy allows everything.
type Policy struct {
	rules []compiledRule
}

type compiledRule struct {
	subjects  *matcher
	actions   []Action
	pipelines *matcher // every pipeline when the rule lists none
	hosts     *matcher // every host of a build when the rule lists none
	// hostTargets: the rule lists hosts, so it grants host targets too.
	hostTargets bool
}

// matcher holds exact names in a set and globs in a list.
type matcher struct {
	any   bool
	exact map[string]struct{}
	globs []string
}

func newMatcher(patterns []string) *matcher {
	if len(patterns) == 0 {
		return nil
	}
	m := &matcher{exact: map[string]struct{}{}}
	for _, p := range patterns {
		switch {
		case p == "*":
			m.any = true
		case strings.ContainsAny(p, `*?[\`):
			m.globs = append(m.globs, p)
		default:
			m.exact[p] = struct{}{}
		}
	}
	return m
}

func (m *matcher) match(name string) bool {
	if m.any {
		return true
	}
	if _, ok := m.exact[name]; ok {
		return true
	}
	for _, g := range m.globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// New compiles a validated Config; it returns nil (allow everything) without rules.
func New(cfg Config) *Policy {
	if !cfg.Enabled() {
		return nil
	}
	p := &Policy{rules: make([]compiledRule, 0, len(cfg.Rules))}
	for _, r := range cfg.Rules {
		cr := compiledRule{
			subjects:    newMatcher(r.Subjects),
			pipelines:   newMatcher(r.Pipelines),
			hosts:       newMatcher(r.Hosts),
			hostTargets: len(r.Hosts) > 0,
		}
		if cr.subjects == nil {
			cr.subjects = &matcher{}
		}
		if cr.pipelines == nil {
			cr.pipelines = &matcher{any: true}
		}
		if cr.hosts == nil {
			cr.hosts = &matcher{any: true}
		}
		for _, a := range r.Actions {
			cr.actions = append(cr.actions, Action(a))
		}
		p.rules = append(p.rules, cr)
	}
	return p
}

// Enabled reports whether the policy checks anything.
func (p *Policy) Enabled() bool { return p != nil }

// Allowed reports whether a subject with these names may do action on t.
func (p *Policy) Allowed(id Identity, action Action, t Target) bool {
	if p == nil {
		return true
	}
	for i := range p.rules {
		r := &p.rules[i]
		if !slices.Contains(r.actions, action) {
			continue
		}
		if t.IsHost {
			if !r.hostTargets || !r.hosts.match(t.Host) {
				continue
			}
		} else if !r.pipelines.match(t.Pipeline) || !r.hosts.match(t.Host) {
			continue
		}
		for _, n := range id.Names {
			if r.subjects.match(n) {
				return true
			}
		}
	}
	return false
}

// Check returns nil when id may do action on t, else a *Denied.
func (p *Policy) Check(id Identity, action Action, t Target) error {
	if p.Allowed(id, action, t) {
		return nil
	}
	return &Denied{Subject: id.Subject(), Action: action, Target: t}
}

// Denied is a request that no rule allows.
type Denied struct {
	Subject string
	Action  Action
	Target  Target
}

func (d *Denied) Error() string {
	return fmt.Sprintf("forbidden: %s lacks %s on %s", d.Subject, d.Action, d.Target)
}
