package state

import (
	"slices"
	"strings"
)

// Reports: which are due, where they are, what they weigh.

// ReportJob is a report that is due: a copy of its build (and the phase's name for a phase
// report), and where to write it.
type ReportJob struct {
	BuildID string
	// Phase is empty for the build report.
	Phase   string
	Dir     string
	File    string
	Version uint64
	Build   *Build
}

func (b *Build) reportBytes() int64 {
	n := b.Report.Bytes
	for _, p := range b.Phases {
		n += p.Report.Bytes
	}
	return n
}

// DueReports returns the reports that must be written, each with a copy of its build.
func (s *Store) DueReports() []ReportJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []ReportJob
	for id := range s.due {
		b := s.builds[id]
		if b == nil {
			delete(s.due, id)
			continue
		}
		if b.ReportDir == "" {
			b.ReportDir = s.namer.BuildDir(b.ID)
			s.markChanged(b)
		}
		var cp *Build
		for _, p := range b.Phases {
			if !p.Report.Due() {
				continue
			}
			if p.Report.File == "" {
				p.Report.File = s.namer.PhaseFile(p.Name)
				s.markChanged(b)
			}
			if cp == nil {
				cp = b.clone()
			}
			jobs = append(jobs, ReportJob{BuildID: b.ID, Phase: p.Name, Dir: b.ReportDir, File: p.Report.File, Version: p.Report.Version, Build: cp})
		}
		if b.Report.Due() {
			if b.Report.File == "" {
				b.Report.File = s.namer.BuildFile()
				s.markChanged(b)
			}
			if cp == nil {
				cp = b.clone()
			}
			jobs = append(jobs, ReportJob{BuildID: b.ID, Dir: b.ReportDir, File: b.Report.File, Version: b.Report.Version, Build: cp})
		}
	}
	slices.SortFunc(jobs, func(a, b ReportJob) int {
		if c := strings.Compare(a.BuildID, b.BuildID); c != 0 {
			return c
		}
		return strings.Compare(a.Phase, b.Phase)
	})
	return jobs
}

// ReportWritten records that a job's report was written with n bytes.
func (s *Store) ReportWritten(job ReportJob, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.builds[job.BuildID]
	if b == nil {
		return
	}
	mark := &b.Report
	if job.Phase != "" {
		mark = nil
		for _, p := range b.Phases {
			if p.Name == job.Phase {
				mark = &p.Report
			}
		}
		if mark == nil {
			return
		}
	}
	mark.Written = max(mark.Written, job.Version)
	s.reportBytes += n - mark.Bytes
	mark.Bytes = n
	s.markChanged(b)
	if !b.reportsDue() {
		delete(s.due, b.ID)
	}
}

func (b *Build) reportsDue() bool {
	if b.Report.Due() {
		return true
	}
	for _, p := range b.Phases {
		if p.Report.Due() {
			return true
		}
	}
	return false
}

// ReportLocation returns the folder and file of a written report of a build (phase "" for
// the build report); ok is false when the build is unknown, due is set when the report is
// due but not yet written.
func (s *Store) ReportLocation(id, phase string) (dir, file string, written, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.builds[id]
	if b == nil {
		return "", "", false, false
	}
	mark := &b.Report
	if phase != "" {
		mark = nil
		for _, p := range b.Phases {
			if p.Name == phase {
				mark = &p.Report
			}
		}
		if mark == nil {
			return "", "", false, false
		}
	}
	return b.ReportDir, mark.File, mark.Written > 0 && mark.File != "", true
}
