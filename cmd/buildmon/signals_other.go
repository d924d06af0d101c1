//go:build !unix

package main

import "os"

// forwardedSignals: without process groups an interrupt stops the command.
var forwardedSignals = []os.Signal{os.Interrupt}
