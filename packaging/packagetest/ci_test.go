//go:build package

package packagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// collector is a running distribution (the ocb build that the packages hold) with the packaged
// config, on free loopback ports, for the CI integrations' tests.
type collector struct {
	ports collectorPorts
}

func (c collector) eventsURL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.ports.events) }
func (c collector) statusURL() string { return fmt.Sprintf("http://127.0.0.1:%d", c.ports.status) }

func startDistribution(t *testing.T) collector {
	t.Helper()
	dist := os.Getenv("BUILDMON_DIST")
	if dist == "" {
		dist = filepath.Join(repoRoot(t), "_build", "otelcol-buildmon")
	}
	c := collector{ports: newCollectorPorts(t)}
	argv := append([]string{dist, "--config=" + filepath.Join(repoRoot(t), "packaging", "config.yaml")}, c.ports.overrides()...)
	startCollector(t, unprivileged{uid: os.Geteuid()}, []string{"BUILDMON_STATE_DIR=" + t.TempDir()}, argv...)
	waitFor(t, 60*time.Second, "health check", func(ctx context.Context) (bool, string) {
		code, body := httpGet(ctx, fmt.Sprintf("http://127.0.0.1:%d/", c.ports.health))
		return code == http.StatusOK, body
	})
	return c
}

// build waits until the status API has build id with want's fields, and returns it.
func (c collector) build(t *testing.T, id string, want map[string]string) map[string]any {
	t.Helper()
	var got map[string]any
	waitFor(t, 20*time.Second, "build "+id+" in the status API", func(ctx context.Context) (bool, string) {
		code, body := httpGet(ctx, c.statusURL()+"/v1/builds/"+url.PathEscape(id))
		if code != http.StatusOK {
			return false, fmt.Sprintf("%d %s", code, body)
		}
		got = nil
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			return false, err.Error()
		}
		for k, v := range want {
			if fmt.Sprint(got[k]) != v {
				return false, fmt.Sprintf("%s=%v, want %s (%s)", k, got[k], v, body)
			}
		}
		return true, ""
	})
	return got
}

// serveDir serves dir over HTTP on a loopback port: a release download location.
func serveDir(t *testing.T, dir string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// release is a download location with the linux archive of this machine's CPU and SHA256SUMS
// from dist/; with corrupt, SHA256SUMS names a different digest for the archive.
func release(t *testing.T, corrupt bool) (baseURL, archiveSHA string) {
	t.Helper()
	dist := packageDir(t)
	goarch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	name := "buildmon_" + packageVersion(t) + "_linux_" + goarch + ".tar.gz"
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dist, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	archiveSHA = sha256File(t, filepath.Join(dir, name))
	if !strings.Contains(string(sums), archiveSHA+"  "+name+"\n") {
		t.Fatalf("dist/SHA256SUMS has no line %q", archiveSHA+"  "+name)
	}
	if corrupt {
		bad := strings.Repeat("0", 64)
		sums = []byte(strings.ReplaceAll(string(sums), archiveSHA, bad))
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	return serveDir(t, dir), archiveSHA
}

// baseEnv is a CI job's environment without anything of the machine the test runs on (its own
// CI variables must not leak in): system PATH, HOME and TMPDIR in the test's directory.
func baseEnv(t *testing.T) map[string]string {
	home := t.TempDir()
	return map[string]string{
		"PATH":   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":   home,
		"TMPDIR": home,
		"LANG":   "C.UTF-8",
	}
}

func envList(env map[string]string) []string {
	var l []string
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	return l
}

// githubAction is the part of action.yml the runner reads for a composite action.
type githubAction struct {
	Inputs map[string]struct {
		Default string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			If    string            `yaml:"if"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

// githubRun is the outcome of running the action's steps as a runner would.
type githubRun struct {
	err     error
	log     string
	outputs map[string]string // the action's outputs
	path    []string          // lines added to GITHUB_PATH
	env     map[string]string // variables added to GITHUB_ENV
	jobEnv  map[string]string // the job's environment the steps ran in
}

var expression = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// runAction runs action.yml's steps the way the GitHub runner runs a composite action: each
// step's `run` in `bash --noprofile --norc -eo pipefail` (the runner's bash), the step's env with
// its ${{ inputs.* }} and ${{ steps.*.outputs.* }} expressions evaluated, a fresh GITHUB_OUTPUT
// per step, GITHUB_ENV and GITHUB_PATH carried into the later steps, and `if:` of the form
// inputs.NAME == 'VALUE'.
func runAction(t *testing.T, with map[string]string, jobEnv map[string]string) githubRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action githubAction
	if err := yaml.Unmarshal(b, &action); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if action.Runs.Using != "composite" {
		t.Fatalf("action.yml runs.using = %q", action.Runs.Using)
	}
	inputs := map[string]string{}
	for name, in := range action.Inputs {
		inputs[name] = in.Default
	}
	for name, v := range with {
		if _, ok := action.Inputs[name]; !ok {
			t.Fatalf("action.yml has no input %q", name)
		}
		inputs[name] = v
	}

	dir := t.TempDir()
	r := githubRun{outputs: map[string]string{}, env: map[string]string{}, jobEnv: jobEnv}
	githubPath := filepath.Join(dir, "github_path")
	githubEnv := filepath.Join(dir, "github_env")
	for _, f := range []string{githubPath, githubEnv} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stepOutputs := map[string]map[string]string{}
	eval := func(s string) string {
		return expression.ReplaceAllStringFunc(s, func(m string) string {
			e := expression.FindStringSubmatch(m)[1]
			if name, ok := strings.CutPrefix(e, "inputs."); ok {
				v, ok := inputs[name]
				if !ok {
					t.Fatalf("action.yml uses unknown input %q", name)
				}
				return v
			}
			if p := strings.Split(e, "."); len(p) == 4 && p[0] == "steps" && p[2] == "outputs" {
				return stepOutputs[p[1]][p[3]]
			}
			t.Fatalf("action.yml: this test does not evaluate ${{ %s }}", e)
			return ""
		})
	}
	var log strings.Builder
	for i, step := range action.Runs.Steps {
		if step.If != "" {
			m := regexp.MustCompile(`^inputs\.([a-z-]+) == '([^']*)'$`).FindStringSubmatch(step.If)
			if m == nil {
				t.Fatalf("step %d: this test does not evaluate if: %s", i, step.If)
			}
			if inputs[m[1]] != m[2] {
				continue
			}
		}
		if step.Shell != "bash" {
			t.Fatalf("step %d: shell %q; the test runs bash steps", i, step.Shell)
		}
		if strings.Contains(step.Run, "${{") {
			t.Errorf("step %d interpolates an expression into its script; pass it through env", i)
		}
		output := filepath.Join(dir, fmt.Sprintf("output-%d", i))
		script := filepath.Join(dir, fmt.Sprintf("step-%d.sh", i))
		if err := os.WriteFile(output, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(script, []byte(step.Run), 0o644); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for k, v := range jobEnv {
			env[k] = v
		}
		for k, v := range r.env {
			env[k] = v
		}
		if len(r.path) > 0 {
			env["PATH"] = strings.Join(r.path, ":") + ":" + env["PATH"]
		}
		for k, v := range step.Env {
			env[k] = eval(v)
		}
		env["GITHUB_ACTION_PATH"] = repoRoot(t)
		env["GITHUB_PATH"], env["GITHUB_ENV"], env["GITHUB_OUTPUT"] = githubPath, githubEnv, output
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Env = envList(env)
		cmd.Dir = jobEnv["GITHUB_WORKSPACE"]
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(&log, "== step %s\n%s", step.ID, out)
		r.log = log.String()
		if err != nil {
			r.err = fmt.Errorf("step %s: %w", step.ID, err)
			break
		}
		stepOutputs[step.ID] = readKeyValues(t, output)
		r.env = readKeyValues(t, githubEnv)
		r.path = readLines(t, githubPath)
	}
	r.env = readKeyValues(t, githubEnv)
	r.path = readLines(t, githubPath)
	for name, o := range action.Outputs {
		r.outputs[name] = eval(o.Value)
	}
	return r
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var l []string
	for _, s := range strings.Split(string(b), "\n") {
		if s != "" {
			l = append(l, s)
		}
	}
	return l
}

// readKeyValues reads NAME=value lines (GITHUB_OUTPUT, GITHUB_ENV); the later of two wins.
func readKeyValues(t *testing.T, path string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for _, l := range readLines(t, path) {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: %q is not NAME=value (the test does not read heredoc values)", path, l)
		}
		kv[k] = v
	}
	return kv
}

// githubJobEnv is the environment the runner gives a job (the variables the client reads).
func githubJobEnv(t *testing.T) map[string]string {
	env := baseEnv(t)
	for k, v := range map[string]string{
		"CI":                 "true",
		"GITHUB_ACTIONS":     "true",
		"GITHUB_RUN_ID":      "7301234567",
		"GITHUB_RUN_ATTEMPT": "2",
		"GITHUB_REPOSITORY":  "octo-org/web-app",
		"GITHUB_WORKFLOW":    "CI",
		"GITHUB_REF_NAME":    "main",
		"GITHUB_SHA":         "4f9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
		"GITHUB_SERVER_URL":  "https://github.com",
		"GITHUB_JOB":         "build",
		"RUNNER_NAME":        "build-host-7",
		"RUNNER_OS":          "Linux",
		"RUNNER_TEMP":        t.TempDir(),
		"GITHUB_WORKSPACE":   t.TempDir(),
	} {
		env[k] = v
	}
	return env
}

// TestGitHubActionInstallsAndStartsBuild runs action.yml's steps with a fake GitHub job against
// a release served on loopback and a running collector: the client lands on GITHUB_PATH, the
// build starts with the job's ids, and a later step of the job reports to the same build.
func TestGitHubActionInstallsAndStartsBuild(t *testing.T) {
	c := startDistribution(t)
	base, _ := release(t, false)
	job := githubJobEnv(t)
	r := runAction(t, map[string]string{
		"version":      packageVersion(t),
		"download-url": base,
		"events-url":   c.eventsURL(),
		"status-url":   c.statusURL(),
		"phases":       "INIT:1,BUILD:2,TEST:unit|e2e",
	}, job)
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.log)
	}
	if !strings.Contains(r.log, "checksum of buildmon_"+packageVersion(t)+"_linux_") || !strings.Contains(r.log, "verified") {
		t.Errorf("the log does not say the checksum was verified:\n%s", r.log)
	}

	// The client is on the job's PATH, and it is the released one.
	if len(r.path) != 1 || r.outputs["path"] != r.path[0] {
		t.Fatalf("GITHUB_PATH %q, output path %q", r.path, r.outputs["path"])
	}
	goarch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	released := filepath.Join(packageDir(t), "buildmon_"+packageVersion(t)+"_linux_"+goarch, "buildmon")
	if sha256File(t, filepath.Join(r.path[0], "buildmon")) != sha256File(t, released) {
		t.Errorf("%s/buildmon is not the released client", r.path[0])
	}

	id := "github-7301234567-2"
	if r.outputs["build-id"] != id || r.env["BUILDMON_BUILD_ID"] != id {
		t.Errorf("build-id output %q, GITHUB_ENV BUILDMON_BUILD_ID %q, want %s", r.outputs["build-id"], r.env["BUILDMON_BUILD_ID"], id)
	}
	if r.env["BUILDMON_EVENTS_URL"] != c.eventsURL() || r.env["BUILDMON_STATUS_URL"] != c.statusURL() {
		t.Errorf("GITHUB_ENV %v does not carry the collector's URLs", r.env)
	}
	c.build(t, id, map[string]string{
		"pipeline":   "octo-org/web-app/CI",
		"repository": "https://github.com/octo-org/web-app",
		"branch":     "main",
		"revision":   "4f9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
		"worker":     "build-host-7",
		"state":      "running",
	})

	// A later step: `buildmon` found on PATH, the build id and URLs from GITHUB_ENV.
	env := map[string]string{}
	for k, v := range job {
		env[k] = v
	}
	for k, v := range r.env {
		env[k] = v
	}
	env["PATH"] = strings.Join(r.path, ":") + ":" + env["PATH"]
	later := exec.Command("bash", "-eo", "pipefail", "-c", "buildmon phase INIT -- sh -c 'buildmon step' && buildmon finish --result success")
	later.Env = envList(env)
	if out, err := later.CombinedOutput(); err != nil {
		t.Fatalf("a later step: %v\n%s", err, out)
	}
	c.build(t, id, map[string]string{"state": "finished", "result": "success"})
}

func TestGitHubActionRejectsWrongChecksum(t *testing.T) {
	base, sha := release(t, true)
	job := githubJobEnv(t)
	r := runAction(t, map[string]string{
		"version":      packageVersion(t),
		"download-url": base,
		"events-url":   "http://127.0.0.1:1",
	}, job)
	if r.err == nil {
		t.Fatalf("the action succeeded with a wrong checksum:\n%s", r.log)
	}
	if !strings.Contains(r.log, "checksum mismatch") || !strings.Contains(r.log, sha) {
		t.Errorf("the log does not report the mismatch (download %s):\n%s", sha, r.log)
	}
	if len(r.path) != 0 || r.env["BUILDMON_BUILD_ID"] != "" {
		t.Errorf("a failed install changed the job: GITHUB_PATH %q, GITHUB_ENV %v", r.path, r.env)
	}
	if strings.Contains(r.log, "== step start") {
		t.Errorf("the start step ran after a failed install")
	}
}

// gitlabInclude is the hidden job template of ci/gitlab/buildmon.gitlab-ci.yml.
type gitlabJob struct {
	Variables    map[string]string `yaml:"variables"`
	BeforeScript []string          `yaml:"before_script"`
	AfterScript  []string          `yaml:"after_script"`
}

func readGitLabInclude(t *testing.T) gitlabJob {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "ci", "gitlab", "buildmon.gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]gitlabJob
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("buildmon.gitlab-ci.yml: %v", err)
	}
	job, ok := doc[".buildmon"]
	if !ok || len(job.BeforeScript) == 0 || len(job.AfterScript) == 0 {
		t.Fatalf("buildmon.gitlab-ci.yml has no .buildmon job with before_script and after_script")
	}
	return job
}

// gitlabJobEnv is the environment of a GitLab job that extends .buildmon: the runner's CI_*
// variables, the template's variables, then the job's own.
func gitlabJobEnv(t *testing.T, tmpl gitlabJob, jobVars map[string]string) map[string]string {
	env := baseEnv(t)
	for k, v := range map[string]string{
		"CI":                 "true",
		"GITLAB_CI":          "true",
		"CI_PIPELINE_ID":     "918273",
		"CI_JOB_ID":          "5550123",
		"CI_PROJECT_PATH":    "platform/web-app",
		"CI_PROJECT_URL":     "https://gitlab.example.com/platform/web-app",
		"CI_COMMIT_REF_NAME": "release-2",
		"CI_COMMIT_SHA":      "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
		"CI_RUNNER_ID":       "42",
		"CI_PROJECT_DIR":     t.TempDir(),
	} {
		env[k] = v
	}
	for k, v := range tmpl.Variables {
		env[k] = v
	}
	for k, v := range jobVars {
		env[k] = v
	}
	return env
}

// runGitLabScript runs script lines as the runner does for a job: in one shell with set -e
// (POSIX sh, what a job image without bash has), in CI_PROJECT_DIR.
func runGitLabScript(env map[string]string, lines []string) (string, error) {
	cmd := exec.Command("sh", "-e", "-c", strings.Join(lines, "\n"))
	cmd.Env = envList(env)
	cmd.Dir = env["CI_PROJECT_DIR"]
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestGitLabIncludeInstallsStartsAndFinishes runs the include's before_script, a job script and
// its after_script (in a new shell, as GitLab does) with a fake GitLab job: the install script is
// fetched from BUILDMON_SCRIPT_URL and the release from loopback, and the build is started with
// the job's ids and finished with CI_JOB_STATUS.
func TestGitLabIncludeInstallsStartsAndFinishes(t *testing.T) {
	c := startDistribution(t)
	base, _ := release(t, false)
	scripts := serveDir(t, filepath.Join(repoRoot(t), "ci"))
	tmpl := readGitLabInclude(t)
	env := gitlabJobEnv(t, tmpl, map[string]string{
		"BUILDMON_VERSION":      packageVersion(t),
		"BUILDMON_SCRIPT_URL":   scripts + "/install-buildmon.sh",
		"BUILDMON_DOWNLOAD_URL": base,
		"BUILDMON_EVENTS_URL":   c.eventsURL(),
		"BUILDMON_STATUS_URL":   c.statusURL(),
		"BUILDMON_PHASES":       "INIT:1,BUILD:2,TEST:unit|e2e",
	})
	if env["BUILDMON_SOURCE"] != "release" {
		t.Errorf("the include's BUILDMON_SOURCE is %q, want release", env["BUILDMON_SOURCE"])
	}

	script := []string{
		`command -v buildmon > "$CI_PROJECT_DIR/which-buildmon"`,
		`buildmon phase INIT -- sh -c 'buildmon step'`,
	}
	out, err := runGitLabScript(env, append(append([]string{}, tmpl.BeforeScript...), script...))
	if err != nil {
		t.Fatalf("before_script and script: %v\n%s", err, out)
	}
	if !strings.Contains(out, "verified") {
		t.Errorf("the job log does not say the checksum was verified:\n%s", out)
	}
	which, err := os.ReadFile(filepath.Join(env["CI_PROJECT_DIR"], "which-buildmon"))
	if err != nil {
		t.Fatal(err)
	}
	goarch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	released := filepath.Join(packageDir(t), "buildmon_"+packageVersion(t)+"_linux_"+goarch, "buildmon")
	if sha256File(t, strings.TrimSpace(string(which))) != sha256File(t, released) {
		t.Errorf("buildmon on the job's PATH (%s) is not the released client", which)
	}

	id := "gitlab-918273-5550123"
	c.build(t, id, map[string]string{
		"pipeline":   "platform/web-app",
		"repository": "https://gitlab.example.com/platform/web-app",
		"branch":     "release-2",
		"revision":   "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
		"worker":     "42",
		"state":      "running",
	})

	env["CI_JOB_STATUS"] = "failed"
	if out, err := runGitLabScript(env, tmpl.AfterScript); err != nil {
		t.Fatalf("after_script: %v\n%s", err, out)
	}
	c.build(t, id, map[string]string{"state": "finished", "result": "failure"})
}

func TestGitLabIncludeRejectsWrongChecksum(t *testing.T) {
	base, sha := release(t, true)
	scripts := serveDir(t, filepath.Join(repoRoot(t), "ci"))
	tmpl := readGitLabInclude(t)
	env := gitlabJobEnv(t, tmpl, map[string]string{
		"BUILDMON_VERSION":      packageVersion(t),
		"BUILDMON_SCRIPT_URL":   scripts + "/install-buildmon.sh",
		"BUILDMON_DOWNLOAD_URL": base,
		"BUILDMON_EVENTS_URL":   "http://127.0.0.1:1",
	})
	out, err := runGitLabScript(env, append(append([]string{}, tmpl.BeforeScript...), "echo the job script ran"))
	if err == nil || strings.Contains(out, "the job script ran") {
		t.Fatalf("the job went on with a wrong checksum (err %v):\n%s", err, out)
	}
	if !strings.Contains(out, "checksum mismatch") || !strings.Contains(out, sha) {
		t.Errorf("the log does not report the mismatch (download %s):\n%s", sha, out)
	}
	if _, err := os.Stat(filepath.Join(env["CI_PROJECT_DIR"], ".buildmon", "bin", "buildmon")); err == nil {
		t.Errorf("the client was installed despite the wrong checksum")
	}
}

// TestCIIntegrationsPinTheRelease: the action's default version and the GitLab include's
// version and script URL name the release `make package` builds, so that they move together.
func TestCIIntegrationsPinTheRelease(t *testing.T) {
	v := packageVersion(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action githubAction
	if err := yaml.Unmarshal(b, &action); err != nil {
		t.Fatal(err)
	}
	if got := action.Inputs["version"].Default; got != v {
		t.Errorf("action.yml inputs.version.default = %q, want %s", got, v)
	}
	tmpl := readGitLabInclude(t)
	if got := tmpl.Variables["BUILDMON_VERSION"]; got != v {
		t.Errorf("the include's BUILDMON_VERSION = %q, want %s", got, v)
	}
	if got := tmpl.Variables["BUILDMON_SCRIPT_URL"]; !strings.Contains(got, "/v"+v+"/ci/install-buildmon.sh") {
		t.Errorf("the include's BUILDMON_SCRIPT_URL %q is not the v%s script", got, v)
	}
}
