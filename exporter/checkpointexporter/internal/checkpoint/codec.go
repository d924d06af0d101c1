// Package checkpoint writes and reads the checkpoint exporter's files crash-safely: the
// envelope format (header, SHA-256 checksum, gzip, optional AES-256-GCM), checkpoint
// generations with restore that falls back past corrupt files, atomic file replacement, and
// the writer that schedules checkpoints.
package checkpoint // import "github.com/buildmon/buildmon/exporter/checkpointexporter/internal/checkpoint"

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/encryption"
)

// Envelope layout (all integers big-endian):
//
//	offset  size  field
//	0       8     magic "BMCKPT\r\n"
//	8       2     format version (1)
//	10      1     kind (1 checkpoint, 2 report)
//	11      1     flags (bit 0 gzip, bit 1 AES-256-GCM sealed)
//	12      8     key id (zero unless sealed)
//	20      8     payload length
//	28      32    SHA-256 over bytes 0–27 and the payload
//	60      n     payload: gzip(JSON), sealed as nonce ‖ ciphertext ‖ tag with bytes 0–27 as
//	              additional data when encrypted
const (
	headerSize    = 60
	sumOffset     = 28
	formatVersion = 1

	flagGzip   = 1 << 0
	flagSealed = 1 << 1
)

var magic = [8]byte{'B', 'M', 'C', 'K', 'P', 'T', '\r', '\n'}

// Kind says what an envelope holds.
type Kind uint8

// Kinds of envelopes.
const (
	KindCheckpoint Kind = 1
	KindReport     Kind = 2
)

// ErrCorrupt is wrapped by Decode errors for files that are truncated, damaged or modified.
var ErrCorrupt = errors.New("corrupt")

// ErrTooLarge is returned by Generations.Write for a payload larger than the codec's bound.
var ErrTooLarge = errors.New("checkpoint too large")

// ErrNoKey is returned by Decode for a sealed envelope when no keyring is configured.
var ErrNoKey = errors.New("the file is encrypted but no encryption key is configured")

// Codec encodes payloads into envelopes. With a nil Keyring nothing is sealed.
type Codec struct {
	Keyring *encryption.Keyring
	// MaxPayload bounds a decoded payload (0: DefaultMaxPayload). The checksum is not keyed,
	// so without the bound a crafted file could decompress into any amount of memory.
	MaxPayload int64
}

// Encode wraps a payload into an envelope: gzip, then sealed with the current key if the
// codec has a keyring.
func (c Codec) Encode(kind Kind, payload []byte) ([]byte, error) {
	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(payload); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	hdr := make([]byte, headerSize, headerSize+z.Len()+64)
	copy(hdr[0:8], magic[:])
	binary.BigEndian.PutUint16(hdr[8:10], formatVersion)
	hdr[10] = byte(kind)
	flags := byte(flagGzip)
	body := z.Bytes()
	if c.Keyring != nil {
		flags |= flagSealed
		id := c.Keyring.CurrentID()
		copy(hdr[12:20], id[:])
		sealedLen := len(body) + c.Keyring.Overhead()
		hdr[11] = flags
		binary.BigEndian.PutUint64(hdr[20:28], uint64(sealedLen))
		out, err := c.Keyring.Seal(hdr, body, hdr[:sumOffset])
		if err != nil {
			return nil, err
		}
		if len(out)-headerSize != sealedLen {
			return nil, fmt.Errorf("sealed length %d, expected %d", len(out)-headerSize, sealedLen)
		}
		putSum(out)
		return out, nil
	}
	hdr[11] = flags
	binary.BigEndian.PutUint64(hdr[20:28], uint64(len(body)))
	out := append(hdr, body...)
	putSum(out)
	return out, nil
}

func putSum(env []byte) {
	h := sha256.New()
	h.Write(env[:sumOffset])
	h.Write(env[headerSize:])
	copy(env[sumOffset:headerSize], h.Sum(nil))
}

// IsEnvelope reports whether data starts like an envelope.
func IsEnvelope(data []byte) bool {
	return len(data) >= len(magic) && bytes.Equal(data[:len(magic)], magic[:])
}

// DefaultMaxPayload bounds a payload when the codec is given no bound: tools that read a
// checkpoint without the exporter's configuration (ReadCheckpointProgress). The exporter
// derives its bound from max_builds (state.PayloadLimit).
const DefaultMaxPayload = 256 << 20

func (c Codec) maxPayload() int64 {
	if c.MaxPayload > 0 {
		return c.MaxPayload
	}
	return DefaultMaxPayload
}

// gcmTagSize is the size of the authentication tag of AES-GCM.
const gcmTagSize = 16

// Decode checks an envelope and returns its kind and payload. Errors wrap ErrCorrupt for
// damaged files, and encryption.ErrUnknownKey or ErrNoKey when the right key is missing.
func (c Codec) Decode(data []byte) (Kind, []byte, error) {
	if len(data) < headerSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(data), headerSize)
	}
	if !IsEnvelope(data) {
		return 0, nil, fmt.Errorf("%w: not a buildmon checkpoint file (bad magic)", ErrCorrupt)
	}
	if v := binary.BigEndian.Uint16(data[8:10]); v != formatVersion {
		return 0, nil, fmt.Errorf("%w: format version %d, this version reads %d", ErrCorrupt, v, formatVersion)
	}
	n := binary.BigEndian.Uint64(data[20:28])
	if n != uint64(len(data)-headerSize) {
		return 0, nil, fmt.Errorf("%w: payload of %d bytes, header says %d (truncated?)", ErrCorrupt, len(data)-headerSize, n)
	}
	h := sha256.New()
	h.Write(data[:sumOffset])
	h.Write(data[headerSize:])
	if !bytes.Equal(h.Sum(nil), data[sumOffset:headerSize]) {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	kind, flags := Kind(data[10]), data[11]
	body := data[headerSize:]
	if flags&flagSealed != 0 {
		// Too short to be sealed by any key: damage, not a missing key.
		if len(body) < encryption.NonceSize+gcmTagSize {
			return 0, nil, fmt.Errorf("%w: sealed payload of %d bytes, shorter than nonce and tag", ErrCorrupt, len(body))
		}
		if c.Keyring == nil {
			return 0, nil, ErrNoKey
		}
		var id encryption.KeyID
		copy(id[:], data[12:20])
		plain, err := c.Keyring.Open(id, body, data[:sumOffset])
		if err != nil {
			if errors.Is(err, encryption.ErrUnknownKey) {
				return 0, nil, err
			}
			return 0, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		body = plain
	}
	if flags&flagGzip != 0 {
		out, err := gunzip(body, c.maxPayload())
		if err != nil {
			return 0, nil, err
		}
		body = out
	}
	return kind, body, nil
}

// gunzip decompresses body if it holds at most limit bytes. It decompresses twice: first only
// counting, so that a file crafted to decompress into much more than the limit costs no
// memory, then into a buffer of the exact size.
func gunzip(body []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: payload larger than %d bytes once decompressed", ErrCorrupt, limit)
	}
	if err := zr.Reset(bytes.NewReader(body)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return out, nil
}
