// Command mkimage writes the otelcol-buildmon container image as an OCI image layout, by the
// steps of packaging/Dockerfile and without a container engine: one layer per COPY (the CA
// certificates, the collector binary, its config, the state directory owned by the image's
// user) and the image config of the Dockerfile's USER, EXPOSE, ENTRYPOINT and CMD.
//
// `make package` runs it from the repository root; load the result with e.g.
// `skopeo copy oci:dist/image docker-daemon:otelcol-buildmon:VERSION` or push it with
// `crane push dist/image REGISTRY/otelcol-buildmon:VERSION`.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the Dockerfile's final stage says; the package tests compare both with the Dockerfile.
const (
	binaryPath = "/otelcol-buildmon"
	configPath = "/etc/otelcol-buildmon/config.yaml"
	caPath     = "/etc/ssl/certs/ca-certificates.crt"
	stateDir   = "/var/lib/otelcol-buildmon"
)

var exposedPorts = []string{"4320/tcp", "4321/tcp", "9464/tcp", "13133/tcp", "8888/tcp"}

type options struct {
	binary, config, caCerts, out, arch, ref string
	uid, gid                                int
	created                                 time.Time
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "_build/otelcol-buildmon", "the collector built for linux/`ARCH`")
	flag.StringVar(&o.config, "config", "packaging/container-config.yaml", "the image's config")
	flag.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to copy (Debian's ca-certificates, as the Dockerfile's certs stage)")
	flag.StringVar(&o.out, "out", "dist/image", "directory of the OCI image layout (replaced)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "architecture of the binary")
	flag.StringVar(&o.ref, "ref", "otelcol-buildmon:dev", "image reference annotated in index.json (org.opencontainers.image.ref.name)")
	flag.IntVar(&o.uid, "uid", 10001, "the image's user id (the Dockerfile's USER_UID)")
	flag.IntVar(&o.gid, "gid", 10001, "the image's group id (the Dockerfile's USER_GID)")
	flag.Parse()

	// Reproducible: every timestamp is SOURCE_DATE_EPOCH (0 when unset), as in a reproducible build.
	o.created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fail(fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err))
		}
		o.created = time.Unix(sec, 0).UTC()
	}
	if err := writeImage(o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}

// entry is one file or directory of a layer.
type entry struct {
	path     string // absolute path in the image
	mode     int64
	uid, gid int
	data     []byte // nil for a directory
}

func writeImage(o options) error {
	caCerts, err := os.ReadFile(o.caCerts)
	if err != nil {
		return fmt.Errorf("reading CA certificates: %w", err)
	}
	binary, err := os.ReadFile(o.binary)
	if err != nil {
		return fmt.Errorf("reading the collector: %w", err)
	}
	config, err := os.ReadFile(o.config)
	if err != nil {
		return fmt.Errorf("reading the config: %w", err)
	}

	steps := []struct {
		createdBy string
		entries   []entry
	}{
		{"COPY --from=certs " + caPath + " " + caPath, withParents(entry{path: caPath, mode: 0o644, data: caCerts})},
		{"COPY --chmod=755 _build/otelcol-buildmon " + binaryPath, withParents(entry{path: binaryPath, mode: 0o755, data: binary})},
		{"COPY packaging/container-config.yaml " + configPath, withParents(entry{path: configPath, mode: 0o644, data: config})},
		{fmt.Sprintf("COPY --from=certs --chown=%d:%d %s %s", o.uid, o.gid, stateDir, stateDir), withParents(entry{path: stateDir, mode: 0o755, uid: o.uid, gid: o.gid})},
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, s := range steps {
		layer, err := tarLayer(s.entries, o.created)
		if err != nil {
			return err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: o.created}, CreatedBy: s.createdBy},
		})
		if err != nil {
			return fmt.Errorf("adding layer %q: %w", s.createdBy, err)
		}
	}

	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.arch
	cf.Created = v1.Time{Time: o.created}
	ports := map[string]struct{}{}
	for _, p := range exposedPorts {
		ports[p] = struct{}{}
	}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", o.uid, o.gid),
		Entrypoint:   []string{binaryPath},
		Cmd:          []string{"--config", configPath},
		ExposedPorts: ports,
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return fmt.Errorf("setting the image config: %w", err)
	}

	if err := os.RemoveAll(o.out); err != nil {
		return err
	}
	p, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return fmt.Errorf("creating the layout %s: %w", o.out, err)
	}
	err = p.AppendImage(img,
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": o.ref}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: o.arch}))
	if err != nil {
		return fmt.Errorf("writing the image to %s: %w", o.out, err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("mkimage: %s %s in %s\n", o.ref, d, o.out)
	return nil
}

// withParents prepends e's parent directories (root-owned, 0755), as COPY creates them.
func withParents(e entry) []entry {
	var parents []entry
	for dir := path.Dir(e.path); dir != "/"; dir = path.Dir(dir) {
		parents = append([]entry{{path: dir, mode: 0o755}}, parents...)
	}
	return append(parents, e)
}

func tarLayer(entries []entry, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.path[1:],
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.data == nil {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.path, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if len(b) == 0 {
		return nil, errors.New("empty layer")
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
