package pdatacontract

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/buildmon/buildmon/internal/schema"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attrs    map[string]any
		wantKind Kind
		wantKey  string
	}{
		{"build", map[string]any{schema.AttrRunID: "run-1", schema.AttrHostName: "h"}, Build, "run-1"},
		{"build with a numeric run id", map[string]any{schema.AttrRunID: int64(4711)}, Build, "4711"},
		{"host", map[string]any{schema.AttrHostName: "h"}, Host, "h"},
		{"empty run id is a host", map[string]any{schema.AttrRunID: "", schema.AttrHostName: "h"}, Host, "h"},
		{"neither", map[string]any{"service.name": "x"}, Other, ""},
		{"empty", map[string]any{}, Other, ""},
		{"empty host", map[string]any{schema.AttrHostName: ""}, Other, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := pcommon.NewMap()
			assert.NoError(t, m.FromRaw(tc.attrs))
			kind, key := Classify(m)
			assert.Equal(t, tc.wantKind, kind)
			assert.Equal(t, tc.wantKey, key)
		})
	}
}

func TestReadResource(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr(schema.AttrRunID, "run-1")
	m.PutStr(schema.AttrPipelineName, "web")
	m.PutStr(schema.AttrHostName, "ci-3")
	m.PutStr(schema.AttrWorkerID, "runner-9")
	m.PutStr(schema.AttrRepositoryURL, "https://example.com/web.git")
	m.PutStr(schema.AttrRefHeadName, "main")
	m.PutStr(schema.AttrRefHeadRevision, "abc123")
	m.PutStr("service.name", "ignored")
	assert.Equal(t, Resource{
		RunID: "run-1", Pipeline: "web", Host: "ci-3", Worker: "runner-9",
		Repository: "https://example.com/web.git", Branch: "main", Revision: "abc123",
	}, ReadResource(m))
	assert.Equal(t, Resource{}, ReadResource(pcommon.NewMap()))
}
