package sysbench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// floorServer is the baseline of the ingestion measurements: an HTTP server on loopback that
// answers every POST like the events API ({"accepted": N}) after reading the body and counting
// its lines, and does nothing else. The load generator against it shows what this machine's
// loopback HTTP and the generator itself can do, beside the collector's numbers.
type floorServer struct {
	srv  *http.Server
	addr string
	wg   sync.WaitGroup
}

func startFloorServer() (*floorServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &floorServer{addr: l.Addr().String()}
	f.srv = &http.Server{Handler: http.HandlerFunc(floorHandler), ReadHeaderTimeout: 10 * time.Second}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := f.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	return f, nil
}

func (f *floorServer) URL() string { return "http://" + f.addr }

func (f *floorServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.srv.Shutdown(ctx)
	f.wg.Wait()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func floorHandler(w http.ResponseWriter, r *http.Request) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := io.Copy(buf, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := bytes.Count(buf.Bytes(), []byte{'\n'})
	if b := buf.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"accepted":` + strconv.Itoa(n) + `,"duplicates":0}`))
}
