// Package buildmon holds the telemetry schema shared by the buildmon components. The schema
// lives in metadata.yaml and is generated into internal/metadata.
package buildmon

//go:generate go tool -modfile=internal/tools/go.mod mdatagen metadata.yaml
