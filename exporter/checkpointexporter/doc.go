// Package checkpointexporter reduces the buildmon metric stream into the monitoring state of
// builds and hosts, writes it as crash-safe checkpoints and JSON reports, serves it over a
// read-only status API and sends alert notifications to Alertmanager or a webhook.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"
