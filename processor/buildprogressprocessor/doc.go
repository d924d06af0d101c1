// Package buildprogressprocessor implements the buildprogress processor: it derives build
// progress, ETA, per-phase resource usage and threshold alerts from buildmon build and host
// metrics and appends them to the batch it passes on. The processor is glue: the progress
// calculator lives in internal/progress and the alert engine in internal/alerting; this
// package reads pdata, routes values to each build's and host's state, emits the derived
// metrics, and logs and counts what changed.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"
