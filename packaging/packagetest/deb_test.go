//go:build package

package packagetest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// packagedFile is one entry of a package: its mode as ls shows it, and its owner and group.
type packagedFile struct {
	mode, owner, group string
}

// wantPackageFiles is the file list of the .deb and the .rpm (directories end in /).
var wantPackageFiles = map[string]packagedFile{
	"/usr/bin/otelcol-buildmon":                        {"-rwxr-xr-x", "root", "root"},
	"/usr/bin/buildmon":                                {"-rwxr-xr-x", "root", "root"},
	"/usr/lib/systemd/system/otelcol-buildmon.service": {"-rw-r--r--", "root", "root"},
	"/etc/otelcol-buildmon/":                           {"drwxr-xr-x", "root", "root"},
	"/etc/otelcol-buildmon/config.yaml":                {"-rw-r-----", "root", "otelcol-buildmon"},
	"/etc/otelcol-buildmon/otelcol-buildmon.conf":      {"-rw-------", "root", "root"},
	"/var/lib/otelcol-buildmon/":                       {"drwxr-x---", "otelcol-buildmon", "otelcol-buildmon"},
}

// wantConffiles are kept on upgrade once changed (nfpm type config|noreplace).
var wantConffiles = []string{"/etc/otelcol-buildmon/config.yaml", "/etc/otelcol-buildmon/otelcol-buildmon.conf"}

// wantScripts maps each package's maintainer script to its source in packaging/.
var wantScripts = map[string]string{
	"preinst":  "preinstall.sh",
	"postinst": "postinstall.sh",
	"prerm":    "preremove.sh",
	"postrm":   "postremove.sh",
}

// parentDirs are directories every system has; a package lists them, and they are not checked.
var parentDirs = map[string]bool{"/etc/": true, "/usr/": true, "/usr/bin/": true, "/usr/lib/": true,
	"/usr/lib/systemd/": true, "/usr/lib/systemd/system/": true, "/var/": true, "/var/lib/": true}

func TestDebFilesModesOwners(t *testing.T) {
	deb := onlyFile(t, packageDir(t), "otelcol-buildmon_"+packageVersion(t)+"_*.deb")

	// dpkg-deb -c: "-rw-r--r-- root/root 1052 2026-12-02 00:34 ./usr/lib/…".
	got := map[string]packagedFile{}
	line := regexp.MustCompile(`^(\S{10}) (\S+)/(\S+)\s+\d+ \S+ \S+ \.(/\S*)$`)
	for _, l := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("cannot read dpkg-deb -c line %q", l)
		}
		if parentDirs[m[4]] {
			continue
		}
		got[m[4]] = packagedFile{m[1], m[2], m[3]}
	}
	if !reflect.DeepEqual(got, wantPackageFiles) {
		t.Errorf("files of %s:\n got %v\nwant %v", filepath.Base(deb), got, wantPackageFiles)
	}

	ctrl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctrl)
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	gotConf := strings.Fields(string(conffiles))
	sort.Strings(gotConf)
	if !reflect.DeepEqual(gotConf, wantConffiles) {
		t.Errorf("conffiles = %v, want %v", gotConf, wantConffiles)
	}
	for script, src := range wantScripts {
		assertSameFile(t, filepath.Join(ctrl, script), filepath.Join(repoRoot(t), "packaging", src))
		fi, err := os.Stat(filepath.Join(ctrl, script))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable: %v", script, fi.Mode())
		}
	}

	info := run(t, "dpkg-deb", "-I", deb)
	arch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	for _, want := range []string{"Package: otelcol-buildmon", "Version: " + packageVersion(t), "Architecture: " + arch} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I has no %q:\n%s", want, info)
		}
	}
}

// TestDebRunsUnprivileged unpacks the .deb into a temporary root and runs the packaged collector
// the way the packaged unit does (ExecStart with OTELCOL_OPTIONS from the packaged environment
// file), as an unprivileged user, with the state directory inside the temporary root. Only the
// listeners' ports are moved to free ones.
func TestDebRunsUnprivileged(t *testing.T) {
	deb := onlyFile(t, packageDir(t), "otelcol-buildmon_"+packageVersion(t)+"_*.deb")
	root := worldReadableTempDir(t)
	run(t, "dpkg-deb", "-x", deb, root)

	// The package holds the binaries `make package` built, byte for byte.
	goarch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	for packaged, built := range map[string]string{
		"usr/bin/otelcol-buildmon": filepath.Join(repoRoot(t), "_build", "otelcol-buildmon"),
		"usr/bin/buildmon":         filepath.Join(packageDir(t), "buildmon_"+packageVersion(t)+"_linux_"+goarch, "buildmon"),
	} {
		if sha256File(t, filepath.Join(root, packaged)) != sha256File(t, built) {
			t.Errorf("/%s in the .deb is not %s", packaged, built)
		}
	}

	unit := readUnit(t, filepath.Join(root, "usr/lib/systemd/system/otelcol-buildmon.service"))
	if unit["User"] != "otelcol-buildmon" || unit["Restart"] != "on-failure" || unit["StateDirectory"] != "otelcol-buildmon" {
		t.Errorf("unit: User=%q Restart=%q StateDirectory=%q, want otelcol-buildmon, on-failure, otelcol-buildmon",
			unit["User"], unit["Restart"], unit["StateDirectory"])
	}
	if unit["EnvironmentFile"] != "/etc/otelcol-buildmon/otelcol-buildmon.conf" {
		t.Fatalf("EnvironmentFile=%q", unit["EnvironmentFile"])
	}
	execStart := strings.Fields(unit["ExecStart"])
	if len(execStart) != 2 || execStart[0] != "/usr/bin/otelcol-buildmon" || execStart[1] != "$OTELCOL_OPTIONS" {
		t.Fatalf("ExecStart=%q, want /usr/bin/otelcol-buildmon $OTELCOL_OPTIONS", unit["ExecStart"])
	}
	envFile := readEnvFile(t, filepath.Join(root, unit["EnvironmentFile"]))
	options := strings.Fields(envFile["OTELCOL_OPTIONS"])
	if len(options) == 0 {
		t.Fatalf("the environment file sets no OTELCOL_OPTIONS")
	}
	// The options name paths of the installed system; here they are under root.
	for i, o := range options {
		if path, ok := strings.CutPrefix(o, "--config="); ok && strings.HasPrefix(path, "/") {
			if _, err := os.Stat(filepath.Join(root, path)); err != nil {
				t.Fatalf("OTELCOL_OPTIONS names %s, which the package does not have: %v", path, err)
			}
			options[i] = "--config=" + filepath.Join(root, path)
		}
	}

	// The package gives the config to the group otelcol-buildmon and the state directory to the
	// user; the unprivileged user of this test stands in for both.
	who := nobody(t)
	stateDir := filepath.Join(root, "var/lib/otelcol-buildmon")
	for _, p := range []string{stateDir, filepath.Join(root, "etc/otelcol-buildmon/config.yaml")} {
		if err := os.Lchown(p, who.uid, who.gid); err != nil && os.Geteuid() == 0 {
			t.Fatal(err)
		}
	}

	ports := newCollectorPorts(t)
	argv := append(append([]string{filepath.Join(root, execStart[0])}, options...), ports.overrides()...)
	env := []string{"PATH=/usr/bin:/bin", "BUILDMON_STATE_DIR=" + stateDir}
	startCollector(t, who, env, argv...)
	waitHealthyWithHostMetrics(t, ports)

	// The state went where the config says, owned by the user the collector ran as.
	for _, sub := range []string{"storage", "checkpoints"} {
		fi, err := os.Stat(filepath.Join(stateDir, sub))
		if err != nil {
			t.Errorf("no %s in the state directory: %v", sub, err)
			continue
		}
		if uid := fileUID(fi); uid != who.uid {
			t.Errorf("%s is owned by uid %d, want %d (the collector's user)", sub, uid, who.uid)
		}
	}
}

// worldReadableTempDir is a temporary directory that an unprivileged user can enter.
func worldReadableTempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir() // <TMPDIR>/<test name><random>/<n>, both made 0700
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// readUnit returns the Key=Value lines of a systemd unit.
func readUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kv := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: cannot read %q", path, l)
		}
		kv[k] = v
	}
	return kv
}

// readEnvFile reads a systemd EnvironmentFile as the shell would: through sh, so quoting is
// interpreted the way both agree on.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	out, err := exec.Command("sh", "-c", `set -a; . "$1"; env -0`, "sh", path).Output()
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	kv := map[string]string{}
	for _, e := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(e, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func assertSameFile(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s differs from %s", got, want)
	}
}
