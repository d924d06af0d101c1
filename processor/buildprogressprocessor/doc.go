package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"
