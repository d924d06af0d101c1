package checkpointexporter

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFileSafe(t *testing.T) {
	for _, tc := range []struct {
		id   string
		kept bool
	}{
		{"checkout-1842", true},
		{"BUILD", true},
		{"a.b_c-d", true},
		{"checkout:1842", false},
		{"x-73c6509d9ae4e5de77806040770bd123", false}, // the legacy escaped form
		{"x-73C6509D9AE4E5DE77806040770BD123", true},  // not the legacy form (upper case)
		{"x-73c6509d9ae4e5de77806040770bd12", true},   // one digit short
		{"_" + strings.Repeat("0", 64), false},        // the escaped form
		{"", false},
		{".", false},
		{"..", false},
		{"../etc", false},
		{"a/b", false},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
	} {
		got := fileSafe(tc.id)
		if tc.kept {
			assert.Equal(t, tc.id, got)
		} else {
			assert.NotEqual(t, tc.id, got)
			assert.True(t, strings.HasPrefix(got, escapedPrefix), "%q -> %q", tc.id, got)
		}
	}
}

// fileNameRE is what every name fileSafe returns must match: one path element, no dot files.
var fileNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// TestFileSafeIsInjective checks, over ids built from the characters and forms that matter
// (safe names, names with ':' or '/', the legacy and the current escaped forms, and the names
// other ids map to), that no two ids share a name and that no id maps to a legacy folder.
func TestFileSafeIsInjective(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 3))
	alphabet := []byte("ab09._-:/x ~\x00é")
	ids := map[string]bool{}
	for range 20000 {
		n := 1 + rng.IntN(12)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		ids[string(b)] = true
	}
	// Every id's name, every name's legacy form, and names of names are ids too.
	for id := range maps(ids) {
		ids[fileSafe(id)] = true
		ids[legacyFolder(id)] = true
		ids[fileSafe(fileSafe(id))] = true
	}
	owner := map[string]string{}
	for id := range ids {
		name := fileSafe(id)
		if prev, ok := owner[name]; ok {
			t.Fatalf("ids %q and %q share the name %q", prev, id, name)
		}
		owner[name] = id
		if legacyEscaped.MatchString(name) {
			t.Fatalf("id %q maps to the legacy folder name %q", id, name)
		}
		if !fileNameRE.MatchString(name) {
			t.Fatalf("id %q maps to %q, not a plain file name", id, name)
		}
	}
	assert.Greater(t, len(owner), 20000, fmt.Sprintf("%d ids", len(owner)))
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
