package wire

import "testing"

func TestControlAt(t *testing.T) {
	for _, tc := range []struct {
		s          string
		name, text int // ControlAt(s, false), ControlAt(s, true)
	}{
		{"plain", -1, -1},
		{"", -1, -1},
		{"ünïcødé ✓", -1, -1},
		{"a\x1b[2J", 1, 1},
		{"\x00", 0, 0},
		{"tab\there", 3, -1},
		{"line\nbreak", 4, -1},
		{"cr\r", 2, 2},
		{"del\x7f", 3, 3},
		{"c1 \u009b31m", 3, 3},
		{"nbsp\u00a0ok", -1, -1}, // 0xC2 0xA0: not C1
		{"x\u0080", 1, 1},
		{"x\u009f", 1, 1},
	} {
		if got := ControlAt(tc.s, false); got != tc.name {
			t.Errorf("ControlAt(%q, false) = %d, want %d", tc.s, got, tc.name)
		}
		if got := ControlAt(tc.s, true); got != tc.text {
			t.Errorf("ControlAt(%q, true) = %d, want %d", tc.s, got, tc.text)
		}
	}
}

// ControlAt's byte rule and IsControl's rune rule agree on every character.
func TestControlAtAgreesWithIsControl(t *testing.T) {
	for r := rune(0); r <= 0x10FFFF; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		if got := ControlAt("a"+string(r), false) == 1; got != IsControl(r) {
			t.Fatalf("%U: ControlAt says control %v, IsControl %v", r, got, IsControl(r))
		}
	}
}
