// Package buildmonreceiver implements the buildmon receiver: host resource metrics and the
// build events API, emitted as build-phase metrics and one trace per build.
package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
