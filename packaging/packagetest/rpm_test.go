//go:build package

package packagetest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rpmArch is rpm's name of a Go architecture.
var rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// TestRPMFilesModesOwners reads the .rpm with rpm (Debian's rpm package): the same files, modes
// and owners as the .deb, the two configs marked %config(noreplace), the binaries byte for byte
// the ones `make package` built, and the same maintainer scripts.
func TestRPMFilesModesOwners(t *testing.T) {
	dir := packageDir(t)
	goarch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	rpm := onlyFile(t, dir, "otelcol-buildmon-"+packageVersion(t)+"-1."+rpmArch[goarch]+".rpm")

	if got := run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", rpm); got != "otelcol-buildmon "+packageVersion(t)+" "+rpmArch[goarch] {
		t.Errorf("name version arch = %q", got)
	}

	// --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink.
	got := map[string]packagedFile{}
	digests := map[string]string{}
	var config []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "rpm", "-qp", "--dump", rpm)), "\n") {
		f := strings.Fields(l)
		if len(f) < 11 {
			t.Fatalf("cannot read rpm --dump line %q", l)
		}
		path, mode := f[0], f[4]
		kind := "-"
		if strings.HasPrefix(mode, "04") {
			kind, path = "d", path+"/"
		}
		got[path] = packagedFile{kind + permString(t, mode), f[5], f[6]}
		digests[path] = f[3]
		if f[7] == "1" {
			config = append(config, path)
		}
	}
	if !reflect.DeepEqual(got, wantPackageFiles) {
		t.Errorf("files of %s:\n got %v\nwant %v", filepath.Base(rpm), got, wantPackageFiles)
	}
	if !reflect.DeepEqual(config, wantConffiles) {
		t.Errorf("%%config files = %v, want %v", config, wantConffiles)
	}
	// %config(noreplace): rpm's flags n (noreplace) and c (config).
	flags := run(t, "rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", rpm)
	for _, c := range wantConffiles {
		if !strings.Contains(flags, c+" cn\n") {
			t.Errorf("%s is not %%config(noreplace):\n%s", c, flags)
		}
	}

	for path, src := range map[string]string{
		"/usr/bin/otelcol-buildmon":                        filepath.Join(repoRoot(t), "_build", "otelcol-buildmon"),
		"/usr/bin/buildmon":                                filepath.Join(dir, "buildmon_"+packageVersion(t)+"_linux_"+goarch, "buildmon"),
		"/etc/otelcol-buildmon/config.yaml":                filepath.Join(repoRoot(t), "packaging", "config.yaml"),
		"/usr/lib/systemd/system/otelcol-buildmon.service": filepath.Join(repoRoot(t), "packaging", "otelcol-buildmon.service"),
	} {
		if want := sha256File(t, src); digests[path] != want {
			t.Errorf("%s in the rpm has sha256 %s, %s has %s", path, digests[path], src, want)
		}
	}

	scripts := run(t, "rpm", "-qp", "--scripts", rpm)
	for section, src := range map[string]string{
		"preinstall": "preinstall.sh", "postinstall": "postinstall.sh",
		"preuninstall": "preremove.sh", "postuninstall": "postremove.sh",
	} {
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", src))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(scripts, section+" scriptlet (using /bin/sh):\n"+string(b)) {
			t.Errorf("the rpm's %s scriptlet is not packaging/%s", section, src)
		}
	}
}

// permString turns rpm's octal mode (0100755) into ls's rwxr-xr-x.
func permString(t *testing.T, octal string) string {
	t.Helper()
	var m uint32
	for _, c := range octal {
		m = m<<3 | uint32(c-'0')
	}
	return os.FileMode(m & 0o777).String()[1:]
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
