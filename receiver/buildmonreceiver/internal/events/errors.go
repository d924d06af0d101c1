package events // import "github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the kind of a client error. The events package knows nothing of HTTP: the receiver's
// handler maps each kind to the status code its README documents.
type Kind int

// Kinds of client errors.
const (
	// KindInvalid: the event is malformed, or not valid in the state of its build.
	KindInvalid Kind = iota + 1
	// KindUnknownBuild: the event names a build the registry does not track.
	KindUnknownBuild
	// KindConflict: build_started for a build that started with a different plan.
	KindConflict
	// KindTooManyBuilds: a new build while the registry tracks max_builds builds.
	KindTooManyBuilds
	// KindForbidden: the request's Check refused the event's build; Err is its error.
	KindForbidden
)

// String names the kind, for logs and tests.
func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindUnknownBuild:
		return "unknown build"
	case KindConflict:
		return "conflict"
	case KindTooManyBuilds:
		return "too many builds"
	case KindForbidden:
		return "forbidden"
	}
	return "kind " + strconv.Itoa(int(k))
}

// Error is a client error: what kind, what is wrong, in which field, and in which line of a
// batch.
type Error struct {
	Kind    Kind
	Message string // what is wrong
	Field   string // the JSON field, e.g. "phases[1].steps"; empty when it is not one field
	Index   int    // 0-based line of an NDJSON batch; -1 for a single event
	Err     error  // the cause, for KindForbidden the Check's error
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "event %d: ", e.Index)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...), Index: -1}
}
