//go:build package

package packagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// scriptRun is one run of a maintainer script against stub commands that record their
// arguments instead of changing the system.
type scriptRun struct {
	calls []string // "command arg…", in order
}

// runScript runs packaging/<name> with args. Stubs of getent, groupadd, useradd and systemctl
// come first on PATH; getent finds the names listed in existing. With systemdRunning the
// script's test for a running systemd (/run/systemd/system) points at a directory that exists,
// otherwise at one that does not. The state directory /var/lib/otelcol-buildmon is stateDir, so
// that a purge removes the test's directory and not this machine's; the useradd line keeps the
// real path (the stub only records it). Nothing else of the script is changed.
func runScript(t *testing.T, name string, systemdRunning bool, existing []string, stateDir string, args ...string) scriptRun {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	log := filepath.Join(dir, "calls")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := "#!/bin/sh\necho \"$(basename \"$0\") $*\" >>" + log + "\n"
	getent := stub + "for n in " + strings.Join(existing, " ") + "; do [ \"$2\" = \"$n\" ] && exit 0; done\nexit 2\n"
	for cmd, body := range map[string]string{"getent": getent, "groupadd": stub, "useradd": stub, "systemctl": stub} {
		if err := os.WriteFile(filepath.Join(bin, cmd), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	src, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", name))
	if err != nil {
		t.Fatal(err)
	}
	systemdDir := filepath.Join(dir, "run-systemd-system")
	if systemdRunning {
		if err := os.Mkdir(systemdDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := string(src)
	if strings.Contains(script, "systemctl") && !strings.Contains(script, "/run/systemd/system") {
		t.Fatalf("%s calls systemctl without checking that systemd runs (/run/systemd/system)", name)
	}
	script = strings.ReplaceAll(script, "/run/systemd/system", systemdDir)
	if name != "preinstall.sh" {
		script = strings.ReplaceAll(script, "/var/lib/otelcol-buildmon", stateDir)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("sh", append([]string{"-e", path}, args...)...)
	cmd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var r scriptRun
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			r.calls = append(r.calls, l)
		}
	}
	return r
}

// changes are the calls that change the system (getent only reads).
func (r scriptRun) changes() []string {
	var c []string
	for _, l := range r.calls {
		if !strings.HasPrefix(l, "getent ") {
			c = append(c, l)
		}
	}
	return c
}

func TestPreinstallCreatesTheServiceUser(t *testing.T) {
	nologin := "/usr/sbin/nologin"
	if _, err := os.Stat(nologin); err != nil {
		nologin = "/sbin/nologin"
	}
	r := runScript(t, "preinstall.sh", false, nil, "", "install")
	want := []string{
		"groupadd --system otelcol-buildmon",
		"useradd --system --gid otelcol-buildmon --no-create-home --home-dir /var/lib/otelcol-buildmon --shell " + nologin + " --comment buildmon collector otelcol-buildmon",
	}
	if got := r.changes(); !reflect.DeepEqual(got, want) {
		t.Errorf("fresh install:\n got %q\nwant %q", got, want)
	}
	// An upgrade, or a user made by the administrator: nothing is created again.
	r = runScript(t, "preinstall.sh", false, []string{"otelcol-buildmon"}, "", "upgrade", "0.0.9")
	if got := r.changes(); len(got) != 0 {
		t.Errorf("with the user present: %q, want no changes", got)
	}
}

func TestScriptsManageTheUnitOnlyUnderSystemd(t *testing.T) {
	enableStart := []string{
		"systemctl daemon-reload",
		"systemctl enable otelcol-buildmon.service",
		"systemctl restart otelcol-buildmon.service",
	}
	stopDisable := []string{"systemctl stop otelcol-buildmon.service", "systemctl disable otelcol-buildmon.service"}
	reload := []string{"systemctl daemon-reload"}
	tests := []struct {
		script  string
		args    []string // deb's arguments, or rpm's count of installed versions
		systemd bool
		want    []string
	}{
		{"postinstall.sh", []string{"configure"}, true, enableStart},
		{"postinstall.sh", []string{"configure", "0.0.9"}, true, enableStart}, // deb upgrade: restart the new binary
		{"postinstall.sh", []string{"1"}, true, enableStart},                  // rpm install
		{"postinstall.sh", []string{"2"}, true, enableStart},                  // rpm upgrade
		{"postinstall.sh", []string{"configure"}, false, nil},                 // container, chroot: nothing started
		{"preremove.sh", []string{"remove"}, true, stopDisable},
		{"preremove.sh", []string{"0"}, true, stopDisable},        // rpm erase
		{"preremove.sh", []string{"upgrade", "0.2.0"}, true, nil}, // deb upgrade: keeps running
		{"preremove.sh", []string{"1"}, true, nil},                // rpm upgrade
		{"preremove.sh", []string{"remove"}, false, nil},
		{"postremove.sh", []string{"remove"}, true, reload},
		{"postremove.sh", []string{"purge"}, true, reload},
		{"postremove.sh", []string{"0"}, true, reload},
		{"postremove.sh", []string{"upgrade", "0.2.0"}, true, nil},
		{"postremove.sh", []string{"1"}, true, nil},
		{"postremove.sh", []string{"remove"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.script+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			if err := os.MkdirAll(filepath.Join(state, "checkpoints"), 0o750); err != nil {
				t.Fatal(err)
			}
			r := runScript(t, tt.script, tt.systemd, []string{"otelcol-buildmon"}, state, tt.args...)
			if got := r.changes(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("systemd running=%v:\n got %q\nwant %q", tt.systemd, got, tt.want)
			}
			// Only a purge deletes the state (checkpoints, reports, file_storage).
			_, err := os.Stat(state)
			if purged := os.IsNotExist(err); purged != (tt.args[0] == "purge") {
				t.Errorf("state directory removed=%v after %s %v", purged, tt.script, tt.args)
			}
		})
	}
}
