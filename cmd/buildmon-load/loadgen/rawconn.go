package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// rawConn is one keep-alive HTTP/1.1 connection that sends prebuilt requests and reads the
// answers with a minimal parser. Run uses it instead of net/http's client because on a small
// machine the generator shares the CPU with the collector it measures: writing a prebuilt
// request in one syscall and reading the answer without header maps costs about half of
// net/http's client per request, which leaves that much more for the collector.
type rawConn struct {
	addr    string
	timeout time.Duration
	conn    net.Conn
	r       *bufio.Reader
}

func newRawConn(target *url.URL, timeout time.Duration) *rawConn {
	return &rawConn{addr: target.Host, timeout: timeout}
}

// rawRequest builds the bytes of one POST to the events API.
func rawRequest(target *url.URL, contentType, token string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("POST /v1/events HTTP/1.1\r\nHost: ")
	b.WriteString(target.Host)
	b.WriteString("\r\nUser-Agent: buildmon-load\r\nContent-Type: ")
	b.WriteString(contentType)
	b.WriteString("\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	if token != "" {
		b.WriteString("\r\nAuthorization: Bearer ")
		b.WriteString(token)
	}
	b.WriteString("\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}

// do sends req and reads the answer; on any error the connection is closed and the next call
// dials a new one.
func (c *rawConn) do(req []byte) (response, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return response{}, err
		}
		c.conn = conn
		if c.r == nil {
			c.r = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.r.Reset(conn)
		}
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		c.close()
		return response{}, err
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return response{}, err
	}
	r, keep, err := readResponse(c.r)
	if err != nil {
		c.close()
		return response{}, err
	}
	if !keep {
		c.close()
	}
	return r, nil
}

func (c *rawConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one HTTP/1.1 answer: status line, headers, and a body delimited by
// Content-Length or chunked encoding. keep is false when the server will close the connection.
func readResponse(r *bufio.Reader) (resp response, keep bool, err error) {
	line, err := readLine(r)
	if err != nil {
		return resp, false, err
	}
	// "HTTP/1.1 202 Accepted"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return resp, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	resp.status = status
	keep = line[7] == '1'
	length, chunked := -1, false
	for {
		h, err := readLine(r)
		if err != nil {
			return resp, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return resp, false, fmt.Errorf("%w: header %q", errMalformed, h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return resp, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	var body []byte
	switch {
	case chunked:
		body, err = readChunked(r)
	case length >= 0:
		if length > maxResponseBody {
			return resp, false, fmt.Errorf("%w: %d-byte answer", errMalformed, length)
		}
		body = make([]byte, length)
		_, err = io.ReadFull(r, body)
	case status == 204 || status == 304 || status/100 == 1:
	default:
		// No length: the body runs to the end of the connection.
		body, err = io.ReadAll(io.LimitReader(r, maxResponseBody))
		keep = false
	}
	if err != nil {
		return resp, false, err
	}
	if status/100 == 2 {
		resp.accepted, _ = jsonInt(body, `"accepted"`)
		resp.duplicates, _ = jsonInt(body, `"duplicates"`)
	} else {
		resp.body = body
	}
	return resp, keep, nil
}

func readChunked(r *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || n < 0 || len(body)+int(n) > maxResponseBody {
			return nil, fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			// Trailers, up to the empty line.
			for {
				t, err := readLine(r)
				if err != nil {
					return nil, err
				}
				if len(t) == 0 {
					return body, nil
				}
			}
		}
		start := len(body)
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(r, body[start:]); err != nil {
			return nil, err
		}
		if crlf, err := readLine(r); err != nil || len(crlf) != 0 {
			return nil, fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
}

// readLine reads one CRLF- (or LF-) terminated line without the terminator. The slice is only
// valid until the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, r.Size())
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
