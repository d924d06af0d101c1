// Package loadgen drives the buildmon events API (POST /v1/events) with bounded, measured load:
// it starts builds, sends single-event or NDJSON-batch requests from several keep-alive
// connections, or paces updates of many builds at a fixed rate. Every run is bounded both in
// the number of requests and in time, and only loopback targets are accepted, so the load can
// never leave the machine.
package loadgen // import "github.com/buildmon/buildmon/cmd/buildmon-load/loadgen"

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckTarget parses the base URL of an events API and accepts it only when it is plain HTTP to
// a loopback IP address (127.0.0.0/8 or ::1) given literally. Host names, even "localhost", are
// refused: what they resolve to is not under the load generator's control.
func CheckTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("target %q: scheme must be http, not %q", raw, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("target %q: credentials in the URL are not supported", raw)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("target %q: host must be a loopback IP address such as 127.0.0.1, not %q", raw, host)
	}
	if !ip.IsLoopback() {
		return nil, fmt.Errorf("target %q: %s is not a loopback address; the load generator only targets this machine", raw, host)
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("target %q: port is required", raw)
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" {
		return nil, fmt.Errorf("target %q: give the base URL without a path (the events API is at /v1/events)", raw)
	}
	u.Path = ""
	return u, nil
}
