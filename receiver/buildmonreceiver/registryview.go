package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"net/http"

	"github.com/buildmon/buildmon/receiver/buildmonreceiver/internal/events"
)

// buildView is the registry's view of a build for clients: plan, states and counts.
type buildView struct {
	events.Build
	State string `json:"state"`
}

func (r *buildmonReceiver) handleBuild(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	b, ok := r.registry.Get(req.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "unknown build")
		return
	}
	state := "running"
	if b.Done() {
		state = "finished"
	}
	writeJSON(w, http.StatusOK, buildView{Build: b, State: state})
}
