package wire // import "github.com/buildmon/buildmon/internal/wire"

// ControlAt returns the byte offset of the first control character in s, or -1: C0
// (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F), which a terminal may act on. The
// events API refuses them in every name; with text (a message), tab and newline are allowed.
// s is taken as UTF-8, so C1 is 0xC2 followed by 0x80–0x9F. Servers and clients share this
// one rule, so the client never sends what the receiver refuses.
func ControlAt(s string, text bool) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20:
			if text && (c == '\t' || c == '\n') {
				continue
			}
			return i
		case c == 0x7f:
			return i
		case c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f:
			return i
		}
	}
	return -1
}

// IsControl reports whether r is a control character in ControlAt's sense.
func IsControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}
