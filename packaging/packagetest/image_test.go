//go:build package

package packagetest

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is what the final stage of packaging/Dockerfile says about the image.
type dockerfile struct {
	user       string
	copies     []dockerCopy
	expose     []string
	entrypoint []string
	cmd        []string
}

type dockerCopy struct {
	from, chmod, chown string
	src, dst           string
}

// parseDockerfile reads the instructions of the Dockerfile's last stage that shape the image
// (ARG defaults, USER, COPY, EXPOSE, ENTRYPOINT, CMD), with line continuations and ${ARG}.
func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cont := ""
	s := bufio.NewScanner(strings.NewReader(string(b)))
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cont == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	var d dockerfile
	args := map[string]string{}
	expand := func(s string) string {
		return os.Expand(s, func(k string) string { return args[k] })
	}
	jsonArray := func(s string) []string {
		var a []string
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			t.Fatalf("Dockerfile: %q is not a JSON array: %v", s, err)
		}
		return a
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM": // a new stage: only the last one is the image
			d = dockerfile{}
			args = map[string]string{}
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case "USER":
			d.user = expand(rest)
		case "COPY":
			var c dockerCopy
			f := strings.Fields(expand(rest))
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
				switch k {
				case "from":
					c.from = v
				case "chmod":
					c.chmod = v
				case "chown":
					c.chown = v
				default:
					t.Fatalf("Dockerfile: COPY flag --%s is not understood by this test", k)
				}
				f = f[1:]
			}
			if len(f) != 2 {
				t.Fatalf("Dockerfile: COPY %q: want one source and one destination", rest)
			}
			c.src, c.dst = f[0], f[1]
			d.copies = append(d.copies, c)
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				d.expose = append(d.expose, p)
			}
		case "ENTRYPOINT":
			d.entrypoint = jsonArray(rest)
		case "CMD":
			d.cmd = jsonArray(rest)
		case "RUN", "ENV", "LABEL", "WORKDIR", "ADD":
			if len(d.copies) > 0 || d.user != "" {
				t.Fatalf("Dockerfile: %s in the final stage is not built by mkimage; teach both", instr)
			}
		default:
			t.Fatalf("Dockerfile: unknown instruction %q", instr)
		}
	}
	sort.Strings(d.expose)
	return d
}

// ociImage is the image of an OCI layout, read with the standard library only (not with the
// library that wrote it), every blob checked against its digest.
type ociImage struct {
	config struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Config       struct {
			User         string              `json:"User"`
			Entrypoint   []string            `json:"Entrypoint"`
			Cmd          []string            `json:"Cmd"`
			ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		} `json:"config"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct {
			CreatedBy string `json:"created_by"`
		} `json:"history"`
	}
	ref    string
	layers []string // paths of the layer blobs, bottom first
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

func readOCILayout(t *testing.T, dir string) ociImage {
	t.Helper()
	var layoutFile struct {
		Version string `json:"imageLayoutVersion"`
	}
	readJSON(t, filepath.Join(dir, "oci-layout"), &layoutFile)
	if layoutFile.Version != "1.0.0" {
		t.Fatalf("oci-layout version %q", layoutFile.Version)
	}
	var index struct {
		Manifests []ociDescriptor `json:"manifests"`
	}
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	if len(index.Manifests) != 1 || index.Manifests[0].MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("index.json: want one OCI image manifest, got %+v", index.Manifests)
	}
	var img ociImage
	img.ref = index.Manifests[0].Annotations["org.opencontainers.image.ref.name"]
	var manifest struct {
		Config ociDescriptor   `json:"config"`
		Layers []ociDescriptor `json:"layers"`
	}
	readJSON(t, blob(t, dir, index.Manifests[0]), &manifest)
	if manifest.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("config media type %q", manifest.Config.MediaType)
	}
	readJSON(t, blob(t, dir, manifest.Config), &img.config)
	if len(img.config.RootFS.DiffIDs) != len(manifest.Layers) {
		t.Fatalf("%d diff_ids for %d layers", len(img.config.RootFS.DiffIDs), len(manifest.Layers))
	}
	for i, l := range manifest.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Errorf("layer %d media type %q", i, l.MediaType)
		}
		p := blob(t, dir, l)
		if got := "sha256:" + uncompressedSHA256(t, p); got != img.config.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: uncompressed digest %s, diff_id %s", i, got, img.config.RootFS.DiffIDs[i])
		}
		img.layers = append(img.layers, p)
	}
	return img
}

// blob returns the path of a descriptor's blob after checking its size and digest.
func blob(t *testing.T, dir string, d ociDescriptor) string {
	t.Helper()
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("digest %q is not sha256", d.Digest)
	}
	p := filepath.Join(dir, "blobs", "sha256", hexDigest)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != d.Size {
		t.Errorf("blob %s: %d bytes, descriptor says %d", d.Digest, fi.Size(), d.Size)
	}
	if got := sha256File(t, p); got != hexDigest {
		t.Errorf("blob %s has digest sha256:%s", d.Digest, got)
	}
	return p
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func uncompressedSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// extractLayers unpacks the layers into root in order, as a container runtime does, with
// modes and (as root) owners. The image's layers hold only directories and regular files.
func extractLayers(t *testing.T, layers []string, root string) {
	t.Helper()
	for _, l := range layers {
		f, err := os.Open(l)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Clean("/" + h.Name)
			if strings.Contains(name, "/.wh.") {
				t.Fatalf("layer %s: whiteout %s (the image should not need any)", l, name)
			}
			p := filepath.Join(root, name)
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				w, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(w, tr); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("layer %s: %s has type %c", l, name, h.Typeflag)
			}
			if err := os.Chmod(p, os.FileMode(h.Mode)&os.ModePerm); err != nil {
				t.Fatal(err)
			}
			if os.Geteuid() == 0 {
				if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.Close()
	}
}

// TestImageMatchesDockerfileAndRuns reads dist/image (written by mkimage) as an OCI layout,
// checks that its config and files are what packaging/Dockerfile says, unpacks its root
// filesystem and runs the entrypoint with the CMD from it, as the image's user, until healthy
// with host metrics.
func TestImageMatchesDockerfileAndRuns(t *testing.T) {
	repo := repoRoot(t)
	df := parseDockerfile(t, filepath.Join(repo, "packaging", "Dockerfile"))
	img := readOCILayout(t, filepath.Join(packageDir(t), "image"))
	c := img.config.Config

	goarch := strings.TrimSpace(run(t, "go", "env", "GOARCH"))
	if img.config.OS != "linux" || img.config.Architecture != goarch {
		t.Errorf("platform %s/%s, want linux/%s", img.config.OS, img.config.Architecture, goarch)
	}
	if want := "otelcol-buildmon:" + packageVersion(t); img.ref != want {
		t.Errorf("ref.name %q, want %q", img.ref, want)
	}
	if c.User != df.user {
		t.Errorf("User %q, Dockerfile USER %q", c.User, df.user)
	}
	uid, gid := parseUser(t, c.User)
	if uid == 0 {
		t.Errorf("the image runs as root")
	}
	if !reflect.DeepEqual(c.Entrypoint, df.entrypoint) || !reflect.DeepEqual(c.Cmd, df.cmd) {
		t.Errorf("Entrypoint %q Cmd %q, Dockerfile ENTRYPOINT %q CMD %q", c.Entrypoint, c.Cmd, df.entrypoint, df.cmd)
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	if !reflect.DeepEqual(ports, df.expose) {
		t.Errorf("ExposedPorts %v, Dockerfile EXPOSE %v", ports, df.expose)
	}
	if len(img.layers) != len(df.copies) {
		t.Errorf("%d layers for the Dockerfile's %d COPY instructions", len(img.layers), len(df.copies))
	}

	root := worldReadableTempDir(t)
	extractLayers(t, img.layers, root)
	for _, cp := range df.copies {
		p := filepath.Join(root, cp.dst)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("COPY %s %s: not in the image: %v", cp.src, cp.dst, err)
			continue
		}
		switch {
		case cp.from == "" && !fi.IsDir():
			// From the build context: the same bytes, and the mode of --chmod or of the source.
			src := filepath.Join(repo, cp.src)
			if sha256File(t, p) != sha256File(t, src) {
				t.Errorf("%s in the image differs from %s", cp.dst, cp.src)
			}
			wantMode := statMode(t, src)
			if cp.chmod != "" {
				m, err := strconv.ParseUint(cp.chmod, 8, 32)
				if err != nil {
					t.Fatal(err)
				}
				wantMode = os.FileMode(m)
			}
			if fi.Mode().Perm() != wantMode {
				t.Errorf("%s has mode %v, want %v", cp.dst, fi.Mode().Perm(), wantMode)
			}
		case cp.dst == "/etc/ssl/certs/ca-certificates.crt":
			if n := countCertificates(t, p); n < 10 {
				t.Errorf("%s holds %d certificates", cp.dst, n)
			}
		}
		if cp.chown != "" {
			u, g := parseUser(t, cp.chown)
			if got := fileUID(fi); os.Geteuid() == 0 && got != u {
				t.Errorf("%s is owned by %d, COPY --chown=%d:%d", cp.dst, got, u, g)
			}
		}
	}
	if img.config.History == nil || len(img.config.History) != len(df.copies) {
		t.Errorf("history %+v, want one entry per COPY", img.config.History)
	}

	// Run the entrypoint with the CMD, every absolute path the CMD names taken from the root
	// filesystem; the state directory is the image's (owned by the image's user).
	var args []string
	for _, a := range append(append([]string{}, c.Entrypoint[1:]...), c.Cmd...) {
		if strings.HasPrefix(a, "/") {
			a = filepath.Join(root, a)
		}
		args = append(args, a)
	}
	ports2 := newCollectorPorts(t)
	argv := append(append([]string{filepath.Join(root, c.Entrypoint[0])}, args...), ports2.overrides()...)
	stateDir := filepath.Join(root, "var/lib/otelcol-buildmon")
	env := []string{
		"BUILDMON_STATE_DIR=" + stateDir,
		"SSL_CERT_FILE=" + filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"),
	}
	who := asUser(t, uid, gid)
	startCollector(t, who, env, argv...)
	waitHealthyWithHostMetrics(t, ports2)
	fi, err := os.Stat(filepath.Join(stateDir, "checkpoints"))
	if err != nil {
		t.Fatalf("no checkpoints in the image's state directory: %v", err)
	}
	if got := fileUID(fi); got != who.uid {
		t.Errorf("checkpoints owned by %d, want %d", got, who.uid)
	}
}

func parseUser(t *testing.T, s string) (uid, gid int) {
	t.Helper()
	u, g, _ := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		t.Fatalf("user %q: want numeric uid:gid", s)
	}
	return uid, gid
}

func statMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func countCertificates(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return n
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Fatalf("%s: certificate %d: %v", path, n+1, err)
		}
		n++
	}
}
