package buildprogressprocessor // import "github.com/buildmon/buildmon/processor/buildprogressprocessor"

import (
	"github.com/buildmon/buildmon/internal/hostusage"
)

// attributeSample adds one host sample's CPU and memory to every phase running on the host
// (phaseusage, the algorithm the checkpoint exporter shares).
func (p *buildProgressProcessor) attributeSample(h *hostState, s *hostusage.Sample) {
	if !s.HasCPU && !s.HasMemUsed {
		return
	}
	for b := range h.builds {
		for _, u := range b.usage {
			if u != nil {
				u.Add(s.CPU, s.HasCPU, s.MemUsed, s.HasMemUsed)
			}
		}
	}
}
