package pdatacontract // import "github.com/buildmon/buildmon/internal/pdatacontract"

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// String returns an attribute value in its string form: a string as it is (without
// allocating), any other type as pcommon renders it (an int run id 42 reads "42"), and ""
// for an empty value.
func String(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return v.AsString()
}

// Str returns the string form of attribute key of m, or "" when m does not have it.
func Str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return String(v)
	}
	return ""
}

// Lookup returns attribute key of a data point or, when the point does not have it, of its
// resource: a rule's filter on host.name matches a point of that host's resource.
func Lookup(point, resource pcommon.Map, key string) (pcommon.Value, bool) {
	if v, ok := point.Get(key); ok {
		return v, true
	}
	return resource.Get(key)
}
