package buildmonreceiver // import "github.com/buildmon/buildmon/receiver/buildmonreceiver"

import (
	"errors"
	"net/http"

	"github.com/buildmon/buildmon/internal/access"
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
	if r.policy.Enabled() {
		id := access.Identify(req, r.authID)
		t := access.Build(b.Pipeline, b.Host)
		var d *access.Denied
		if err := r.policy.Check(id, access.StatusRead, t); errors.As(err, &d) {
			r.forbid(w, req, d, err)
			return
		}
		r.audit.Record(access.Decision{Subject: id.Subject(), Action: access.StatusRead, Target: t, Allowed: true}, r.now())
	}
	state := "running"
	if b.Done() {
		state = "finished"
	}
	writeJSON(w, http.StatusOK, buildView{Build: b, State: state})
}
