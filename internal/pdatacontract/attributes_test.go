package pdatacontract

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestStr(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("s", "linux")
	m.PutStr("empty", "")
	m.PutInt("i", 42)
	m.PutDouble("d", 1.5)
	m.PutBool("b", true)
	m.PutEmpty("none")
	m.PutEmptySlice("list").AppendEmpty().SetStr("x")
	for _, tc := range []struct{ key, want string }{
		{"s", "linux"},
		{"empty", ""},
		{"i", "42"},
		{"d", "1.5"},
		{"b", "true"},
		{"none", ""},
		{"list", `["x"]`},
		{"missing", ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			assert.Equal(t, tc.want, Str(m, tc.key))
			if v, ok := m.Get(tc.key); ok {
				assert.Equal(t, tc.want, String(v))
			}
		})
	}
}

func TestStrDoesNotAllocateForStrings(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("cpu.mode", "busy")
	allocs := testing.AllocsPerRun(100, func() {
		if Str(m, "cpu.mode") != "busy" {
			t.Fatal("wrong value")
		}
	})
	assert.Zero(t, allocs)
}

func TestLookupPointThenResource(t *testing.T) {
	point, resource := pcommon.NewMap(), pcommon.NewMap()
	point.PutStr("build.phase", "TEST")
	point.PutStr("host.name", "point-host")
	resource.PutStr("host.name", "resource-host")
	resource.PutStr("cicd.pipeline.name", "web")
	resource.PutInt("cicd.worker.id", 7)
	for _, tc := range []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"build.phase", "TEST", true},
		{"host.name", "point-host", true}, // the point's own attribute wins
		{"cicd.pipeline.name", "web", true},
		{"cicd.worker.id", "7", true},
		{"missing", "", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			v, ok := Lookup(point, resource, tc.key)
			assert.Equal(t, tc.wantOK, ok)
			if ok {
				assert.Equal(t, tc.want, String(v))
			}
		})
	}
}
