package printable

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"BUILD", "BUILD"},
		{"héllo wörld ✓ 日本", "héllo wörld ✓ 日本"},
		{`C:\path\x1b`, `C:\path\x1b`},
		{"\x1b[2J", `\x1b[2J`},
		{"\x1b]0;title\x07", `\x1b]0;title\a`},
		{"a\x00b", `a\x00b`},
		{"tab\tnew\nline\rcr", `tab\tnew\nline\rcr`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m \u0080 \u009f", `c1 \u009b31m \u0080 \u009f`},
		{"raw \xc2\x9b", `raw \u009b`},
		{"bad \xff\xfe end", `bad \xff\xfe end`},
		{"cut \xe2\x82", `cut \xe2\x82`},
		{"real \uFFFD stays", "real \uFFFD stays"},
		{"bidi \u202eevil\u202c \u2066x\u2069 \u200f\u061c", `bidi \u202eevil\u202c \u2066x\u2069 \u200f\u061c`},
		{"sep\u2028\u2029", `sep\u2028\u2029`},
		{"nbsp\u00a0ok", "nbsp\u00a0ok"},
	} {
		got := String(tc.in)
		assert.Equal(t, tc.want, got, "%q", tc.in)
		assert.Equal(t, got, String(got), "idempotent on %q", tc.in)
		assert.Equal(t, -1, firstUnsafe(got), "%q", got)
	}
}

func TestJSON(t *testing.T) {
	in := []byte(`{"a":"x` + "\x7f\u009b\xff\u202e" + `y","b":["\u001b","é"],"c":1}`)
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, in))
	got := JSON(compact.Bytes())
	assert.Equal(t, `{"a":"x\u007f\u009b\ufffd\u202ey","b":["\u001b","é"],"c":1}`, string(got))
	var before, after any
	require.NoError(t, json.Unmarshal(in, &before))
	require.NoError(t, json.Unmarshal(got, &after))
	assert.Equal(t, before, after, "the same document")
	assert.Equal(t, `{"ok":"plain"}`, string(JSON([]byte(`{"ok":"plain"}`))))
}

func TestCheck(t *testing.T) {
	assert.NoError(t, Check(""))
	assert.NoError(t, Check("BUILD é ✓ \u202e \uFFFD"), "only control characters and invalid UTF-8 are refused")
	for _, tc := range []struct {
		in   string
		char rune
		at   int
		msg  string
	}{
		{"a\x1bb", 0x1b, 1, `contains the control character \x1b`},
		{"\tx", '\t', 0, `contains the control character \t`},
		{"x\n", '\n', 1, `contains the control character \n`},
		{"del\x7f", 0x7f, 3, `contains the control character \x7f`},
		{"c1\u009b", 0x9b, 2, `contains the control character \u009b`},
	} {
		err := Check(tc.in)
		var ce *ControlError
		require.ErrorAs(t, err, &ce, "%q", tc.in)
		assert.Equal(t, tc.char, ce.Char)
		assert.Equal(t, tc.at, ce.Offset)
		assert.EqualError(t, err, tc.msg)
	}
	assert.ErrorIs(t, Check("x\xff"), ErrInvalidUTF8)
}
