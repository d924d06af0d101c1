//go:build package

package packagetest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestClientArchives checks every client archive against SHA256SUMS and its contents: the
// client built for the archive's OS and CPU, and its README.
func TestClientArchives(t *testing.T) {
	dir := packageDir(t)
	v := packageVersion(t)
	sums := map[string]string{}
	for _, l := range readLines(t, filepath.Join(dir, "SHA256SUMS")) {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("SHA256SUMS line %q", l)
		}
		sums[f[1]] = f[0]
	}
	platforms := []struct {
		os, arch string
		check    func(t *testing.T, b []byte)
	}{
		{"linux", "amd64", elfMachine(elf.EM_X86_64)},
		{"linux", "arm64", elfMachine(elf.EM_AARCH64)},
		{"darwin", "amd64", machoCPU(macho.CpuAmd64)},
		{"darwin", "arm64", machoCPU(macho.CpuArm64)},
		{"windows", "amd64", peMachine(pe.IMAGE_FILE_MACHINE_AMD64)},
	}
	var want []string
	for _, p := range platforms {
		name := "buildmon_" + v + "_" + p.os + "_" + p.arch + ".tar.gz"
		exe := "buildmon"
		if p.os == "windows" {
			name = strings.TrimSuffix(name, ".tar.gz") + ".zip"
			exe = "buildmon.exe"
		}
		want = append(want, name)
		t.Run(p.os+"/"+p.arch, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if got := sha256File(t, path); sums[name] != got {
				t.Fatalf("SHA256SUMS says %q for %s, the file is %s", sums[name], name, got)
			}
			files := readArchive(t, path)
			var names []string
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			if strings.Join(names, " ") != strings.Join(sortedPair(exe, "README.md"), " ") {
				t.Fatalf("%s holds %v, want %s and README.md", name, names, exe)
			}
			p.check(t, files[exe])
		})
	}
	for _, pkg := range []string{"*.deb", "*.rpm"} {
		want = append(want, filepath.Base(onlyFile(t, dir, pkg)))
	}
	var listed []string
	for n := range sums {
		listed = append(listed, n)
	}
	sort.Strings(listed)
	sort.Strings(want)
	if strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("SHA256SUMS lists %v, want %v", listed, want)
	}

	// The archive of this machine runs and says its version.
	goarch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	files := readArchive(t, filepath.Join(dir, "buildmon_"+v+"_linux_"+goarch+".tar.gz"))
	bin := filepath.Join(t.TempDir(), "buildmon")
	if err := os.WriteFile(bin, files["buildmon"], 0o755); err != nil {
		t.Fatal(err)
	}
	if out := run(t, bin, "version"); strings.TrimSpace(out) != "buildmon "+v {
		t.Errorf("buildmon version says %q, want buildmon %s", out, v)
	}
}

// TestInstallScriptFromDirectory installs from a directory of archives and SHA256SUMS (the dist/
// of `make package`), with no GITHUB_PATH: the script prints where the client is.
func TestInstallScriptFromDirectory(t *testing.T) {
	env := baseEnv(t)
	env["BUILDMON_VERSION"] = "v" + packageVersion(t) // a leading v is accepted
	env["BUILDMON_SOURCE"] = packageDir(t)
	env["BUILDMON_INSTALL_DIR"] = filepath.Join(t.TempDir(), "bin")
	cmd := exec.Command("sh", filepath.Join(repoRoot(t), "ci", "install-buildmon.sh"))
	cmd.Env = envList(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != env["BUILDMON_INSTALL_DIR"] {
		t.Errorf("stdout %q, want only the install directory %s", got, env["BUILDMON_INSTALL_DIR"])
	}
	if !strings.Contains(stderr.String(), "verified") {
		t.Errorf("no verified checksum in the log:\n%s", stderr.String())
	}
	if out := run(t, filepath.Join(env["BUILDMON_INSTALL_DIR"], "buildmon"), "version"); !strings.Contains(out, packageVersion(t)) {
		t.Errorf("installed client says %q", out)
	}
}

// A version that is no version (it would reach file names and URLs) is refused before
// anything is downloaded or installed.
func TestInstallScriptRefusesABadVersion(t *testing.T) {
	for _, v := range []string{"../../etc", "1.0/x", "1.0 x", "$(id)", ".hidden"} {
		env := baseEnv(t)
		env["BUILDMON_VERSION"] = v
		env["BUILDMON_SOURCE"] = packageDir(t)
		env["BUILDMON_INSTALL_DIR"] = filepath.Join(t.TempDir(), "bin")
		cmd := exec.Command("sh", filepath.Join(repoRoot(t), "ci", "install-buildmon.sh"))
		cmd.Env = envList(env)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is not a version") {
			t.Errorf("version %q: err %v, output %s", v, err, out)
		}
		if _, err := os.Stat(filepath.Join(env["BUILDMON_INSTALL_DIR"], "buildmon")); err == nil {
			t.Errorf("version %q: a client was installed", v)
		}
	}
}

func sortedPair(a, b string) []string {
	s := []string{a, b}
	sort.Strings(s)
	return s
}

// readArchive returns the regular files of a .tar.gz or .zip by name.
func readArchive(t *testing.T, path string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			files[f.Name] = b
		}
		return files
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			t.Fatalf("%s: %s is not a regular file", path, h.Name)
		}
		if h.Name == "buildmon" && h.Mode&0o111 == 0 {
			t.Errorf("%s: buildmon is not executable (%o)", path, h.Mode)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}

func elfMachine(m elf.Machine) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not an ELF binary: %v", err)
		}
		if f.Machine != m {
			t.Errorf("ELF machine %v, want %v", f.Machine, m)
		}
	}
}

func machoCPU(c macho.Cpu) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		f, err := macho.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not a Mach-O binary: %v", err)
		}
		if f.Cpu != c {
			t.Errorf("Mach-O CPU %v, want %v", f.Cpu, c)
		}
	}
}

func peMachine(m uint16) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		f, err := pe.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not a PE binary: %v", err)
		}
		if f.Machine != m {
			t.Errorf("PE machine %#x, want %#x", f.Machine, m)
		}
	}
}
