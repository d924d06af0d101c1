// Package printable makes text from outside buildmon (the collector's answers, the environment,
// the command line) safe to print on a terminal, and checks text before buildmon sends it.
//
// A terminal acts on control characters: ESC [2J clears the screen, OSC 0;…BEL sets the window
// title, and the C1 character U+009B is CSI on its own. A bidi override reorders what follows,
// and a line separator starts a new line, so both can forge output. String shows all of them
// visibly, Go-quoted (\x1b, \a, \n, \u009b, \u202e), and every byte that is not valid UTF-8 as
// \xff. Backslashes are left as they are: an escape in the output is either one of these or
// text that the sender wrote that way, and neither reaches the terminal as a control.
package printable

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/buildmon/buildmon/internal/wire"
)

// unsafe reports whether a terminal would act on r rather than show it: the control
// characters, the line and paragraph separators, and the bidi controls.
func unsafe(r rune) bool {
	switch {
	case wire.IsControl(r):
		return true
	case r == '\u2028' || r == '\u2029': // line and paragraph separator
		return true
	case r == '\u061c' || r == '\u200e' || r == '\u200f': // bidi marks
		return true
	case r >= '\u202a' && r <= '\u202e': // bidi embeddings and overrides
		return true
	case r >= '\u2066' && r <= '\u2069': // bidi isolates
		return true
	}
	return false
}

// Writer escapes what is written to it as String does, except newlines and tabs: for output
// whose lines and columns are laid out by the writer (usage text) but may quote what the user
// typed. Each Write is escaped on its own, so it must hold whole characters, as every
// fmt.Fprint call does.
type Writer struct{ W io.Writer }

func (w Writer) Write(p []byte) (int, error) {
	lines := strings.Split(string(p), "\n")
	for i, l := range lines {
		cells := strings.Split(l, "\t")
		for j, c := range cells {
			cells[j] = String(c)
		}
		lines[i] = strings.Join(cells, "\t")
	}
	if _, err := io.WriteString(w.W, strings.Join(lines, "\n")); err != nil {
		return 0, err
	}
	return len(p), nil
}

// String returns s with every character a terminal would act on, and every byte that is not
// valid UTF-8, written as a Go escape. Newlines and tabs are escaped too: what one field of an
// answer says stays on one line and in its column. String of its own result is that result.
func String(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafe(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// firstUnsafe is the byte offset of the first unsafe character or invalid byte of s, or -1.
func firstUnsafe(s string) int {
	for i, r := range s {
		if unsafe(r) || (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) {
			return i
		}
	}
	return -1
}

// JSON returns compact JSON (as json.Compact writes it) with every character a terminal would
// act on written as a \u escape, and every byte that is not valid UTF-8 as \ufffd, which is how
// a JSON decoder reads it. In compact JSON such characters can only be inside strings, so the
// result is the same JSON document.
func JSON(compact []byte) []byte {
	out := make([]byte, 0, len(compact))
	for i := 0; i < len(compact); {
		c := compact[i]
		if c < utf8.RuneSelf && !unsafe(rune(c)) {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(compact[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case unsafe(r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, compact[i:i+size]...)
		}
		i += size
	}
	return out
}

// ErrInvalidUTF8 is returned by Check for text that is not valid UTF-8.
var ErrInvalidUTF8 = errors.New("is not valid UTF-8")

// ControlError is returned by Check for text that holds a control character.
type ControlError struct {
	Char   rune
	Offset int // in bytes
}

func (e *ControlError) Error() string {
	return "contains the control character " + String(string(e.Char))
}

// Check returns an error when s holds a control character (C0, DEL, C1) or is not valid UTF-8:
// text that the events API refuses in names, and that buildmon therefore does not send.
func Check(s string) error {
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	if i := wire.ControlAt(s, false); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return &ControlError{Char: r, Offset: i}
	}
	return nil
}
