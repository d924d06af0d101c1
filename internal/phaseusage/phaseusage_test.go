package phaseusage

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPhase(t *testing.T) {
	kinds := Kinds{Disk: true, Net: true, Ops: true}
	for _, tc := range []struct {
		name    string
		start   Totals
		samples []struct {
			cpu    float64
			hasCPU bool
			mem    int64
			hasMem bool
		}
		end      Totals
		kinds    Kinds
		startN   uint64
		endN     uint64
		want     Usage
		wantNoOK bool
	}{
		{
			name:  "samples and counters",
			start: Totals{Disk: [2]int64{100, 200}, Net: [2]int64{10, 20}, Ops: [2]int64{1, 2}},
			samples: []struct {
				cpu    float64
				hasCPU bool
				mem    int64
				hasMem bool
			}{{0.2, true, 5, true}, {0.6, true, 9, true}, {0, false, 7, true}},
			end:    Totals{Disk: [2]int64{1100, 2200}, Net: [2]int64{310, 420}, Ops: [2]int64{11, 22}},
			kinds:  kinds,
			startN: 3, endN: 6,
			want: Usage{CPUAvg: 0.4, CPUMax: 0.6, MemMax: 9, Disk: [2]int64{1000, 2000}, Net: [2]int64{300, 400}, Ops: [2]int64{10, 20},
				HasCPU: true, HasMem: true, HasDisk: true, HasNet: true, HasOps: true},
		},
		{
			name:  "kinds the host never sent are unknown",
			end:   Totals{Disk: [2]int64{5, 6}},
			kinds: Kinds{Disk: true},
			endN:  1,
			want:  Usage{Disk: [2]int64{5, 6}, HasDisk: true},
		},
		{
			name:  "totals that started again count as no increase",
			start: Totals{Disk: [2]int64{1 << 40, 7}, Net: [2]int64{50, 50}, Ops: [2]int64{9, 9}},
			end:   Totals{Disk: [2]int64{300, 17}, Net: [2]int64{10, 60}, Ops: [2]int64{0, 0}},
			kinds: kinds, startN: 10, endN: 11,
			want: Usage{Disk: [2]int64{0, 10}, Net: [2]int64{0, 10}, HasDisk: true, HasNet: true, HasOps: true},
		},
		{
			name:  "no sample while the phase ran",
			start: Totals{Disk: [2]int64{1, 1}}, end: Totals{Disk: [2]int64{9, 9}},
			kinds: kinds, startN: 4, endN: 4, wantNoOK: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := Start(tc.start, tc.startN)
			for _, s := range tc.samples {
				u.Add(s.cpu, s.hasCPU, s.mem, s.hasMem)
			}
			got, ok := u.End(tc.end, tc.kinds, tc.endN)
			assert.Equal(t, !tc.wantNoOK, ok)
			if ok {
				assert.InDelta(t, tc.want.CPUAvg, got.CPUAvg, 1e-12)
				got.CPUAvg = tc.want.CPUAvg
				assert.Equal(t, tc.want, got)
			}
		})
	}
}
