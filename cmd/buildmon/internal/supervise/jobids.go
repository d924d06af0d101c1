package supervise

// processIDs returns the process ids of a JOBOBJECT_BASIC_PROCESS_ID_LIST (Windows): the
// first listed of its ids, never more than the array holds, without the zero id (the idle
// process, never a job's). It lives outside the Windows file so that tests run everywhere.
func processIDs(ids []uintptr, listed uint32) []uint32 {
	n := min(int(listed), len(ids))
	out := make([]uint32, 0, n)
	for _, id := range ids[:n] {
		if id != 0 {
			out = append(out, uint32(id))
		}
	}
	return out
}
