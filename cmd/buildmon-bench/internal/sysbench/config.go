// Package sysbench runs the system-level measurements of the bench suite against the
// ocb-built distribution: idle cost, event ingestion, checkpoint staleness and write volume,
// memory with many builds, and end-to-end latency to the Prometheus endpoint.
package sysbench // import "github.com/buildmon/buildmon/cmd/buildmon-bench/internal/sysbench"

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Ports are the listening ports of one collector instance, all on 127.0.0.1.
type Ports struct {
	Events, Status, Prometheus, Health int
	// Pprof is the pprof extension's port, 0 when the config has none.
	Pprof int
}

// Override changes one key of the collector config; Path is the dotted key path
// ("receivers.buildmon.max_builds"), Value nil deletes the key.
type Override struct {
	Path  string
	Value any
}

// AddPprof adds the pprof extension on a loopback port to a collector config (the default
// config leaves it out: it is a debugging aid, not something a build host should serve), so
// that profiles can be fetched. RenderConfig then gives it a free port like every endpoint.
func AddPprof(config []byte) ([]byte, error) {
	var root map[string]any
	if err := yaml.Unmarshal(config, &root); err != nil {
		return nil, fmt.Errorf("parsing the config: %w", err)
	}
	if err := set(root, []string{"extensions", "pprof", "endpoint"}, "127.0.0.1:1777"); err != nil {
		return nil, err
	}
	service, _ := root["service"].(map[string]any)
	if service == nil {
		return nil, errors.New("the config has no service section")
	}
	exts, _ := service["extensions"].([]any)
	for _, e := range exts {
		if e == "pprof" {
			return yaml.Marshal(root)
		}
	}
	service["extensions"] = append(exts, "pprof")
	return yaml.Marshal(root)
}

var loopbackEndpoint = regexp.MustCompile(`^127\.0\.0\.1:(\d+)$`)

// RenderConfig turns the default config into the bench's own: every loopback port (any
// "127.0.0.1:<port>" value and any "port:" key) is replaced with a free one, so the bench runs
// beside `make run`, and the overrides are applied. Relative directories are left relative:
// the collector runs in a directory of its own.
func RenderConfig(defaultConfig []byte, overrides []Override) ([]byte, Ports, error) {
	var root map[string]any
	if err := yaml.Unmarshal(defaultConfig, &root); err != nil {
		return nil, Ports{}, fmt.Errorf("parsing the default config: %w", err)
	}
	used := map[int]bool{}
	if err := replacePorts(root, used); err != nil {
		return nil, Ports{}, err
	}
	for _, o := range overrides {
		if err := set(root, strings.Split(o.Path, "."), o.Value); err != nil {
			return nil, Ports{}, fmt.Errorf("override %s: %w", o.Path, err)
		}
	}
	var ports Ports
	var errs []error
	for _, role := range []struct {
		path string
		port *int
	}{
		{"receivers.buildmon.events.endpoint", &ports.Events},
		{"exporters.checkpoint.status.endpoint", &ports.Status},
		{"exporters.prometheus.endpoint", &ports.Prometheus},
		{"extensions.health_check.endpoint", &ports.Health},
	} {
		p, err := endpointPort(root, role.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*role.port = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, Ports{}, err
	}
	if p, err := endpointPort(root, "extensions.pprof.endpoint"); err == nil {
		ports.Pprof = p
	}
	out, err := yaml.Marshal(root)
	return out, ports, err
}

// replacePorts walks the config and gives every loopback endpoint and port key a free port.
func replacePorts(node any, used map[int]bool) error {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if s, ok := v.(string); ok && loopbackEndpoint.MatchString(s) {
				p, err := freePort(used)
				if err != nil {
					return err
				}
				n[k] = "127.0.0.1:" + strconv.Itoa(p)
				continue
			}
			if _, ok := v.(int); ok && k == "port" {
				p, err := freePort(used)
				if err != nil {
					return err
				}
				n[k] = p
				continue
			}
			if err := replacePorts(v, used); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range n {
			if err := replacePorts(v, used); err != nil {
				return err
			}
		}
	}
	return nil
}

// freePort asks the kernel for a port nothing listens on and that this config does not use yet.
func freePort(used map[int]bool) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !used[p] {
			used[p] = true
			return p, nil
		}
	}
	return 0, errors.New("finding a free port: no distinct port in 100 tries")
}

func set(node map[string]any, path []string, value any) error {
	for _, k := range path[:len(path)-1] {
		next, ok := node[k]
		if !ok || next == nil {
			if value == nil {
				return nil
			}
			m := map[string]any{}
			node[k] = m
			node = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not a mapping", k)
		}
		node = m
	}
	last := path[len(path)-1]
	if value == nil {
		delete(node, last)
		return nil
	}
	node[last] = value
	return nil
}

func lookup(root map[string]any, path string) (any, bool) {
	var node any = root
	for _, k := range strings.Split(path, ".") {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		if node, ok = m[k]; !ok {
			return nil, false
		}
	}
	return node, true
}

func endpointPort(root map[string]any, path string) (int, error) {
	v, ok := lookup(root, path)
	if !ok {
		return 0, fmt.Errorf("config has no %s", path)
	}
	s, _ := v.(string)
	m := loopbackEndpoint.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%s = %v is not a 127.0.0.1 endpoint", path, v)
	}
	return strconv.Atoi(m[1])
}

// Lookup returns the value at a dotted key path of a rendered config, for the scenarios that
// need to know a setting (the checkpoint directory, its interval).
func Lookup(config []byte, path string) (any, error) {
	var root map[string]any
	if err := yaml.Unmarshal(config, &root); err != nil {
		return nil, err
	}
	v, ok := lookup(root, path)
	if !ok {
		return nil, fmt.Errorf("config has no %s", path)
	}
	return v, nil
}
