//go:build package

package packagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestHelmExampleConfigValidates takes the `config:` of the README's Helm values, applies it
// as the chart does (a null removes a key of the chart's default config), adds the components
// of the chart's default config that it refers to (memory_limiter, batch, debug), and has the
// distribution validate the result with the environment the chart gives the pod. No cluster
// runs here; this catches a wrong key or component name in the example.
func TestHelmExampleConfigValidates(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n# values-buildmon.yaml")
	if !ok {
		t.Fatal("README.md has no ```yaml block starting with # values-buildmon.yaml")
	}
	_, rest, _ = strings.Cut(rest, "\n") // the rest of the comment line
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("the Helm values block is not closed")
	}
	var values struct {
		Mode    string `yaml:"mode"`
		Command struct {
			Name string `yaml:"name"`
		} `yaml:"command"`
		Image struct {
			Repository string `yaml:"repository"`
			Tag        string `yaml:"tag"`
		} `yaml:"image"`
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal([]byte(block), &values); err != nil {
		t.Fatalf("the README's Helm values: %v", err)
	}
	if values.Mode != "daemonset" || values.Command.Name != "otelcol-buildmon" || values.Image.Tag != packageVersion(t) {
		t.Errorf("mode %q, command.name %q, image.tag %q; want daemonset, otelcol-buildmon (the image's entrypoint), %s",
			values.Mode, values.Command.Name, values.Image.Tag, packageVersion(t))
	}
	if values.Config == nil {
		t.Fatal("the Helm values have no config")
	}

	cfg := dropNulls(values.Config).(map[string]any)
	section := func(name string) map[string]any {
		m, _ := cfg[name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			cfg[name] = m
		}
		return m
	}
	chartDefaults := map[string]map[string]any{
		"processors": {
			"memory_limiter": map[string]any{"check_interval": "5s", "limit_percentage": 80, "spike_limit_percentage": 25},
			"batch":          map[string]any{},
		},
		"exporters": {"debug": map[string]any{}},
	}
	for sec, comps := range chartDefaults {
		s := section(sec)
		for name, c := range comps {
			if _, ok := s[name]; !ok {
				s[name] = c
			}
		}
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	dist := filepath.Join(repoRoot(t), "_build", "otelcol-buildmon")
	// The pod has the host's /proc at /hostfs/proc; here a directory stands in for /hostfs.
	hostfs := t.TempDir()
	cmd := exec.Command(dist, "validate", "--config="+path,
		"--config=yaml:receivers::buildmon::host::root_path: "+hostfs)
	cmd.Env = []string{"MY_POD_IP=127.0.0.1", "K8S_NODE_NAME=node-1", "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("otelcol-buildmon validate of the Helm example's config: %v\n%s\n--- config\n%s", err, out, b)
	}
}

// dropNulls removes the keys whose value is null, as Helm does when it merges values.
func dropNulls(v any) any {
	switch m := v.(type) {
	case map[string]any:
		for k, e := range m {
			if e == nil {
				delete(m, k)
				continue
			}
			m[k] = dropNulls(e)
		}
	case []any:
		for i, e := range m {
			m[i] = dropNulls(e)
		}
	}
	return v
}
