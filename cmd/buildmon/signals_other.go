//go:build !unix

package main

import "os"

// forwardedSignals: on Windows an interrupt (Ctrl+C, Ctrl+Break) reaches the wrapped command
// from the console it shares with buildmon; buildmon resumes a paused command so that it can
// handle it, and waits for it to exit.
var forwardedSignals = []os.Signal{os.Interrupt}
