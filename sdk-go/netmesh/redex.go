package netmesh

/*
#include <net.h>
*/
import "C"

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"
	"unsafe"
)

// Redex is a RedEX manager: the RedEX files (crash-safe append-only logs,
// one per channel name) of one base directory, or memory-only files when it
// has none.
//
// It owns a libnet handle (net_redex_t). Close releases it; files opened
// through it are independent handles and stay open until their own Close.
// A Redex is safe for concurrent use, Close included.
type Redex struct {
	h handle // *C.net_redex_t
}

func freeRedex(p unsafe.Pointer) error {
	return freeStatus("net_redex_free", func() C.net_status_t { return C.net_redex_free((*C.net_redex_t)(p)) })
}

// OpenRedex creates a manager (net_redex_open). With a non-empty baseDir,
// persistent files live under it (channel "a/b" in baseDir/a/b); with "" the
// manager opens memory-only files, and a persistent one fails with
// ErrRedexNoPersistentDir.
func OpenRedex(baseDir string) (*Redex, error) {
	var p *C.net_redex_t
	err := check("net_redex_open", func() C.net_status_t {
		if baseDir == "" {
			return C.net_redex_open(nil, 0, &p)
		}
		return C.net_redex_open(stringPtr(baseDir), C.size_t(len(baseDir)), &p)
	})
	if err != nil {
		return nil, err
	}
	r := &Redex{h: newHandle(unsafe.Pointer(p))}
	runtime.SetFinalizer(r, func(r *Redex) { r.h.leaked("netmesh.Redex", freeRedex) })
	return r, nil
}

func (r *Redex) handle(op string) (*C.net_redex_t, error) {
	if r == nil {
		return nil, invalidArgument(op, "redex is nil")
	}
	p := (*C.net_redex_t)(r.h.load())
	if p == nil {
		return nil, shuttingDown(op, "redex has been closed")
	}
	return p, nil
}

// Close frees the manager (net_redex_free). It waits (up to 5 s, inside
// libnet) for calls in flight on other goroutines, such as an OpenFile still
// recovering a large file; calls made after Close began fail with
// ErrShuttingDown. Files already opened stay open. It returns the free's
// outcome: nil, or an error matching ErrBusy when calls were still running at
// libnet's 5 s deadline (the manager is then leaked, never freed under
// them). Close is idempotent and safe to call concurrently; every call
// returns the one free's outcome.
func (r *Redex) Close() error {
	if r == nil {
		return nil
	}
	runtime.SetFinalizer(r, nil)
	return r.h.close(freeRedex)
}

// OpenFile opens (creating, or recovering from disk) the RedEX file of
// channel name with cfg (net_redex_open_file). The zero FileConfig is a
// memory-only file with no limits.
//
// Opening a name that is already open on this manager returns another handle
// on the same file (the configuration must then be the same). A persistent
// channel can be open in one manager (one process) at a time: another one
// fails with ErrRedexLocked until the first file is closed.
//
// A persistent file is recovered on open: damage that recovery can prove
// harmless to drop (a torn tail, a record failing its checksum) is dropped
// and listed in [RedexFile.RecoveryReport]. A file the channel needs that is
// missing or damaged beyond that (say the live generation's dat) fails with
// ErrRedexCorrupt, naming the file and changing nothing: restore it, or open
// with FileConfig.Repair to keep what can be proven.
//
// Errors: ErrChannelInvalidName, ErrRedexInvalidConfig (the message names
// the key), ErrRedexNoPersistentDir, ErrRedexLocked, ErrRedexCorrupt,
// ErrRedexIO.
func (r *Redex) OpenFile(name string, cfg FileConfig) (*RedexFile, error) {
	js, err := cfg.marshal()
	if err != nil {
		return nil, invalidConfig("net_redex_open_file", err.Error())
	}
	return r.OpenFileJSON(name, string(js))
}

// OpenFileJSON is OpenFile with the configuration given as the JSON that
// net_redex_open_file takes ("" for the defaults):
//
//	{"persistent": true,
//	 "fsync": "never" | {"every_n": N} | {"interval_ms": MS} | {"interval_ms": MS, "max_bytes": B},
//	 "retention": {"max_events": N, "max_bytes": B, "max_age_ms": MS},
//	 "repair": false}
//
// It is the escape hatch for settings FileConfig cannot express (such as
// "max_events": 0) and for configurations stored as text.
func (r *Redex) OpenFileJSON(name, configJSON string) (*RedexFile, error) {
	const op = "net_redex_open_file"
	p, err := r.handle(op)
	if err != nil {
		return nil, err
	}
	var out *C.net_redex_file_t
	err = check(op, func() C.net_status_t {
		var cfg *C.uint8_t
		if configJSON != "" {
			cfg = stringPtr(configJSON)
		}
		return C.net_redex_open_file(p, stringPtr(name), C.size_t(len(name)), cfg, C.size_t(len(configJSON)), &out)
	})
	runtime.KeepAlive(r)
	if err != nil {
		return nil, err
	}
	f := &RedexFile{h: newHandle(unsafe.Pointer(out)), name: name}
	runtime.SetFinalizer(f, func(f *RedexFile) { f.h.leaked("netmesh.RedexFile", closeRedexFile) })
	return f, nil
}

// FileConfig is how a RedEX file is opened. The zero value is a memory-only
// file with fsync FsyncNever and no retention limits.
//
// json.Marshal of a FileConfig gives the JSON net_redex_open_file takes.
type FileConfig struct {
	// Persistent stores the file under the manager's base directory (false:
	// memory only).
	Persistent bool
	// Fsync is when appends are made durable; anything but FsyncNever needs
	// Persistent. Close always syncs.
	Fsync FsyncPolicy
	// Retention limits, applied by RedexFile.SweepRetention.
	Retention Retention
	// Repair lets the open of a persistent file whose live generation lost
	// its idx or dat rebuild the channel from what can be proven, instead of
	// failing with ErrRedexCorrupt; RedexFile.RecoveryReport then lists what
	// was lost. It needs Persistent (else ErrRedexInvalidConfig).
	Repair bool
}

// Retention limits: each SweepRetention removes the longest prefix of
// oldest entries that any limit requires. A zero field means "no limit"
// (use OpenFileJSON for the rarely useful limit of zero events or bytes).
type Retention struct {
	MaxEvents uint64        // keep at most this many entries
	MaxBytes  uint64        // keep at most this many bytes (20 per entry + payload)
	MaxAge    time.Duration // drop entries older than this (whole ms, rounded up)
}

type fsyncKind uint8

const (
	fsyncNever fsyncKind = iota
	fsyncEveryN
	fsyncInterval
	fsyncIntervalOrBytes
)

// FsyncPolicy is when appends to a persistent file are made durable. Build
// one with FsyncNever, FsyncEveryN, FsyncInterval or FsyncIntervalOrBytes;
// the zero value is FsyncNever.
type FsyncPolicy struct {
	kind     fsyncKind
	n        uint64
	interval time.Duration
	maxBytes uint64
}

// FsyncNever never syncs on append (the default): appends survive a process
// crash but not a power loss until Sync or Close.
var FsyncNever = FsyncPolicy{}

// FsyncEveryN syncs after every n appended entries (a batch counts each
// entry; 0 means 1), inside the append that reaches the count: with
// FsyncEveryN(1) a returned append is durable.
func FsyncEveryN(n uint64) FsyncPolicy { return FsyncPolicy{kind: fsyncEveryN, n: n} }

// FsyncInterval syncs from a background thread every d (0: never).
func FsyncInterval(d time.Duration) FsyncPolicy {
	return FsyncPolicy{kind: fsyncInterval, interval: d}
}

// FsyncIntervalOrBytes syncs every d (if non-zero) and, inside the append,
// whenever the bytes appended since the last sync reach maxBytes (if
// non-zero).
func FsyncIntervalOrBytes(d time.Duration, maxBytes uint64) FsyncPolicy {
	return FsyncPolicy{kind: fsyncIntervalOrBytes, interval: d, maxBytes: maxBytes}
}

// String describes the policy, e.g. "every_n(4)".
func (p FsyncPolicy) String() string {
	switch p.kind {
	case fsyncEveryN:
		return fmt.Sprintf("every_n(%d)", p.n)
	case fsyncInterval:
		return fmt.Sprintf("interval(%v)", p.interval)
	case fsyncIntervalOrBytes:
		return fmt.Sprintf("interval_or_bytes(%v, %d)", p.interval, p.maxBytes)
	default:
		return "never"
	}
}

// millis converts d to whole milliseconds, rounding up so that a positive
// duration never becomes 0; a negative one is an error naming key.
func millis(key string, d time.Duration) (uint64, error) {
	if d < 0 {
		return 0, fmt.Errorf("%s: negative duration %v", key, d)
	}
	return uint64((d + time.Millisecond - 1) / time.Millisecond), nil
}

func (p FsyncPolicy) json() (json.RawMessage, error) {
	switch p.kind {
	case fsyncEveryN:
		return json.RawMessage(`{"every_n":` + strconv.FormatUint(p.n, 10) + `}`), nil
	case fsyncInterval:
		ms, err := millis("fsync.interval_ms", p.interval)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(`{"interval_ms":` + strconv.FormatUint(ms, 10) + `}`), nil
	case fsyncIntervalOrBytes:
		ms, err := millis("fsync.interval_ms", p.interval)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(`{"interval_ms":` + strconv.FormatUint(ms, 10) +
			`,"max_bytes":` + strconv.FormatUint(p.maxBytes, 10) + `}`), nil
	default:
		return json.RawMessage(`"never"`), nil
	}
}

type retentionJSON struct {
	MaxEvents *uint64 `json:"max_events,omitempty"`
	MaxBytes  *uint64 `json:"max_bytes,omitempty"`
	MaxAgeMs  *uint64 `json:"max_age_ms,omitempty"`
}

type fileConfigJSON struct {
	Persistent bool            `json:"persistent"`
	Fsync      json.RawMessage `json:"fsync"`
	Retention  retentionJSON   `json:"retention"`
	Repair     bool            `json:"repair,omitempty"`
}

func (c FileConfig) marshal() ([]byte, error) {
	fsync, err := c.Fsync.json()
	if err != nil {
		return nil, err
	}
	out := fileConfigJSON{Persistent: c.Persistent, Fsync: fsync, Repair: c.Repair}
	if c.Retention.MaxEvents != 0 {
		out.Retention.MaxEvents = &c.Retention.MaxEvents
	}
	if c.Retention.MaxBytes != 0 {
		out.Retention.MaxBytes = &c.Retention.MaxBytes
	}
	if c.Retention.MaxAge != 0 {
		ms, err := millis("retention.max_age_ms", c.Retention.MaxAge)
		if err != nil {
			return nil, err
		}
		out.Retention.MaxAgeMs = &ms
	}
	return json.Marshal(out)
}

// MarshalJSON gives the configuration JSON of net_redex_open_file, e.g.
// {"persistent":true,"fsync":{"every_n":1},"retention":{"max_events":100}}
// ("repair":true only when Repair is set). A negative duration is an error.
func (c FileConfig) MarshalJSON() ([]byte, error) { return c.marshal() }

// Entry is one entry of a RedEX file: its sequence number and payload.
type Entry struct {
	Seq     uint64
	Payload []byte
}

// RedexFile is one channel's RedEX file: an append-only log of byte
// payloads numbered by consecutive sequence numbers.
//
// It owns a libnet handle (net_redex_file_t). Close syncs, closes and
// releases it (and, for a persistent file, the channel directory's writer
// lock); a finalizer does the same (on another goroutine, with a warning
// logged) for a file garbage collected unclosed, but do not rely on that:
// until then the channel stays locked. A RedexFile is safe for concurrent
// use by multiple goroutines, Close included.
type RedexFile struct {
	h    handle // *C.net_redex_file_t
	name string
}

func (f *RedexFile) handle(op string) (*C.net_redex_file_t, error) {
	if f == nil {
		return nil, invalidArgument(op, "file is nil")
	}
	p := (*C.net_redex_file_t)(f.h.load())
	if p == nil {
		return nil, shuttingDown(op, "file has been closed")
	}
	return p, nil
}

// do runs one net_redex_file_* call on the live handle. A call that raced
// this handle's Close inside libnet (NET_ERR_REDEX_CLOSED once Close has
// begun) is reported as ErrShuttingDown, like every call racing Close.
func (f *RedexFile) do(op string, fn func(*C.net_redex_file_t) C.net_status_t) error {
	p, err := f.handle(op)
	if err != nil {
		return err
	}
	err = check(op, func() C.net_status_t { return fn(p) })
	if errors.Is(err, ErrRedexClosed) && f.h.load() == nil {
		err = shuttingDown(op, "file has been closed")
	}
	runtime.KeepAlive(f)
	return err
}

// Name is the channel name the file was opened with.
func (f *RedexFile) Name() string { return f.name }

// Close syncs and closes the file (net_redex_file_close) and frees its
// handle (net_redex_file_free), releasing a persistent channel's lock; tails
// of the file end (their Next returns io.EOF). It returns the error of that
// final sync, if any (the file is closed regardless), joined with the free's
// outcome: an error matching ErrBusy when calls were still running at
// libnet's 5 s deadline (the file is then leaked, never freed under them).
//
// Close waits (up to 5 s, inside libnet) for calls in flight on other
// goroutines: an Append already writing completes and is synced. A call
// racing Close, or made after it began, fails with ErrShuttingDown. Close is
// idempotent and safe to call concurrently; every call waits for the one
// close and returns its outcome.
//
// If another handle on the same file (a second OpenFile of the same name on
// the same manager) is still open, that handle's calls then fail with
// ErrRedexClosed.
func (f *RedexFile) Close() error {
	if f == nil {
		return nil
	}
	runtime.SetFinalizer(f, nil)
	return f.h.close(closeRedexFile)
}

// closeRedexFile is net_redex_file_close then net_redex_file_free.
func closeRedexFile(ptr unsafe.Pointer) error {
	p := (*C.net_redex_file_t)(ptr)
	err := check("net_redex_file_close", func() C.net_status_t { return C.net_redex_file_close(p) })
	if errors.Is(err, ErrRedexClosed) || errors.Is(err, ErrShuttingDown) {
		// Already closed through another handle on the same file, or freed
		// through the raw pointer: the free below reports the outcome.
		err = nil
	}
	return joinErrors(err, freeStatus("net_redex_file_free", func() C.net_status_t { return C.net_redex_file_free(p) }))
}

// Append appends payload (any length, stored out of line) and returns its
// sequence number.
//
// Errors: ErrRedexClosed, ErrRedexPoisoned, ErrRedexTooLarge,
// ErrRedexSeqExhausted (no sequence numbers left below 2^63; nothing
// appended), ErrRedexIO (nothing appended), ErrRedexSyncFailed (appended but
// not durable; the file is poisoned).
func (f *RedexFile) Append(payload []byte) (uint64, error) {
	var seq C.uint64_t
	err := f.do("net_redex_file_append", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_append(p, bytesPtr(payload), C.size_t(len(payload)), &seq)
	})
	return uint64(seq), err
}

// AppendInline appends exactly 8 bytes stored inside the index record (no
// payload storage) and returns the sequence number; any other length is
// ErrRedexInlineLength.
func (f *RedexFile) AppendInline(payload []byte) (uint64, error) {
	var seq C.uint64_t
	err := f.do("net_redex_file_append_inline", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_append_inline(p, bytesPtr(payload), C.size_t(len(payload)), &seq)
	})
	return uint64(seq), err
}

// AppendBatch appends payloads atomically on consecutive sequence numbers
// and returns the first one with ok = true. An empty batch appends nothing
// and returns (0, false, nil): there is no first sequence number. On error
// nothing of the batch is appended (errors as Append).
func (f *RedexFile) AppendBatch(payloads [][]byte) (first uint64, ok bool, err error) {
	// The payloads are passed in place: a Go array of net_slice_t pointing
	// at pinned Go memory (cgo forbids unpinned Go pointers inside it).
	var slices []C.net_slice_t
	var pinner runtime.Pinner
	defer pinner.Unpin()
	if len(payloads) > 0 {
		slices = make([]C.net_slice_t, len(payloads))
		for i, pl := range payloads {
			if len(pl) == 0 {
				continue // {NULL, 0}
			}
			data := unsafe.SliceData(pl)
			pinner.Pin(data)
			slices[i] = C.net_slice_t{ptr: (*C.uint8_t)(unsafe.Pointer(data)), len: C.size_t(len(pl))}
		}
	}
	var seq C.uint64_t
	var appended C.bool
	err = f.do("net_redex_file_append_batch", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_append_batch(p, unsafe.SliceData(slices), C.size_t(len(slices)), &seq, &appended)
	})
	if err != nil || !bool(appended) {
		return 0, false, err
	}
	return uint64(seq), true, nil
}

// Read returns the payload of entry seq with found = true, or (nil, false,
// nil) when there is no such entry (never appended, removed by retention, or
// dropped at recovery for a checksum mismatch).
func (f *RedexFile) Read(seq uint64) (payload []byte, found bool, err error) {
	var out C.net_bytes_t
	var ok C.bool
	err = f.do("net_redex_file_read", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_read(p, C.uint64_t(seq), &out, &ok)
	})
	if err != nil {
		return nil, false, err
	}
	payload = takeBytes(&out)
	if !bool(ok) {
		return nil, false, nil
	}
	return payload, true, nil
}

// ReadRange returns the live entries with from <= Seq < to, in order (an
// empty, non-nil slice when there are none).
func (f *RedexFile) ReadRange(from, to uint64) ([]Entry, error) {
	const op = "net_redex_file_read_range"
	var out C.net_bytes_t
	err := f.do(op, func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_read_range(p, C.uint64_t(from), C.uint64_t(to), &out)
	})
	if err != nil {
		return nil, err
	}
	return unpackEntries(op, takeBytes(&out))
}

// unpackEntries splits read_range's buffer of records
// seq (u64 LE) | len (u32 LE) | payload. The payloads share buf's memory.
func unpackEntries(op string, buf []byte) ([]Entry, error) {
	entries := []Entry{}
	for len(buf) > 0 {
		if len(buf) < 12 {
			return nil, &Error{Op: op, Status: StatusInternal, Message: "truncated record header in the entries buffer"}
		}
		seq := binary.LittleEndian.Uint64(buf)
		n := uint64(binary.LittleEndian.Uint32(buf[8:]))
		buf = buf[12:]
		if uint64(len(buf)) < n {
			return nil, &Error{Op: op, Status: StatusInternal, Message: "truncated payload in the entries buffer"}
		}
		entries = append(entries, Entry{Seq: seq, Payload: buf[:n:n]})
		buf = buf[n:]
	}
	return entries, nil
}

// NextSeq is the sequence number the next append will get (it never goes
// backwards, even when retention removes entries).
func (f *RedexFile) NextSeq() (uint64, error) {
	var out C.uint64_t
	err := f.do("net_redex_file_next_seq", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_next_seq(p, &out)
	})
	return uint64(out), err
}

// RecoveryReport is what opening a persistent RedEX file found and did
// (net_redex_file_recovery_report). Everything recovery dropped is listed
// in Dropped; nothing is dropped silently.
type RecoveryReport struct {
	// Generation is the live generation after the open.
	Generation uint32 `json:"generation"`
	// Records is the number of whole index records found in idx.
	Records uint64 `json:"records"`
	// Entries is the number of entries recovered (readable).
	Entries uint64 `json:"entries"`
	// Holes is the number of hole records in the index after the open
	// (sequence numbers known missing and never reused), including those
	// this open made.
	Holes uint64 `json:"holes"`
	// Dropped lists the records this open dropped, with why.
	Dropped []DroppedRecord `json:"dropped"`
	// TornIdxBytes is the size of a partial record cut from the end of idx
	// (a torn write).
	TornIdxBytes uint64 `json:"torn_idx_bytes"`
	// DatTruncatedBytes is the number of bytes cut from the end of dat that
	// no kept entry refers to.
	DatTruncatedBytes uint64 `json:"dat_truncated_bytes"`
	// TimestampsRestored counts entries (and holes) whose timestamp was
	// missing, stamped with the time of the open.
	TimestampsRestored uint64 `json:"timestamps_restored"`
	// IndexRewritten tells whether idx and ts were rewritten (atomically) to
	// record drops.
	IndexRewritten bool `json:"index_rewritten"`
	// Repaired tells whether the open was asked to repair (FileConfig.Repair)
	// and had to.
	Repaired bool `json:"repaired"`
	// Notes are other findings, one sentence each.
	Notes []string `json:"notes"`
	// Clean is true when the open found nothing to drop, cut or repair.
	Clean bool `json:"clean"`
}

// Why recovery dropped a record ([DroppedRecord.Reason]).
const (
	// DropChecksumMismatch: the payload does not match the record's checksum.
	DropChecksumMismatch = "checksum_mismatch"
	// DropPayloadOutOfRange: the payload ends past the end of dat (a torn
	// append, a truncated or lost dat, or a corrupt offset or length).
	DropPayloadOutOfRange = "payload_out_of_range"
	// DropSeqOutOfRange: the record's sequence number is at or above 2^63.
	DropSeqOutOfRange = "seq_out_of_range"
	// DropSeqBreaksRun: the record's sequence number does not continue the
	// run of its neighbours, so it cannot be trusted.
	DropSeqBreaksRun = "seq_breaks_run"
)

// DroppedRecord is one record recovery dropped.
type DroppedRecord struct {
	// Position is the record's position in idx (0-based) as found.
	Position uint64 `json:"position"`
	// Seq is the sequence number its slot keeps as a hole (never reused), or
	// nil when its position leaves no sequence number free for it.
	Seq *uint64 `json:"seq"`
	// StoredSeq is the sequence number the record claimed (the same as *Seq
	// unless the sequence number itself was the damage).
	StoredSeq uint64 `json:"stored_seq"`
	// Reason is why it was dropped: one of the Drop* constants.
	Reason string `json:"reason"`
}

// RecoveryReport returns what opening this persistent file found and did,
// or nil (and no error) for a memory-only file. A second handle on the same
// file reports the open that created it.
func (f *RedexFile) RecoveryReport() (*RecoveryReport, error) {
	const op = "net_redex_file_recovery_report"
	var out C.net_bytes_t
	err := f.do(op, func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_recovery_report(p, &out)
	})
	if err != nil {
		return nil, err
	}
	var report *RecoveryReport
	if err := json.Unmarshal(takeBytes(&out), &report); err != nil {
		return nil, &Error{Op: op, Status: StatusInternal, Message: err.Error()}
	}
	return report, nil
}

// Len is the number of live entries.
func (f *RedexFile) Len() (uint64, error) {
	var out C.uint64_t
	err := f.do("net_redex_file_len", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_len(p, &out)
	})
	return uint64(out), err
}

// Sync makes every append so far durable. ErrRedexIO if the fsync fails
// (the file is then poisoned: later appends fail with ErrRedexPoisoned).
func (f *RedexFile) Sync() error {
	return f.do("net_redex_file_sync", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_sync(p)
	})
}

// SweepRetention applies the retention limits, removing the oldest entries
// they require (a persistent file is compacted so the space is freed), and
// returns how many were removed. Tails that had not read them get a
// *LaggedError.
func (f *RedexFile) SweepRetention() (uint64, error) {
	var out C.uint64_t
	err := f.do("net_redex_file_sweep_retention", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_sweep_retention(p, &out)
	})
	return uint64(out), err
}

// Tail starts a reader at sequence number from: it delivers every entry from
// there on (backfill), then follows new appends, with no gap and no
// duplicate. Close it when done. The tail keeps the RedexFile reachable, so
// the file's finalizer cannot close it under the reader.
func (f *RedexFile) Tail(from uint64) (*RedexTail, error) {
	var out *C.net_redex_tail_t
	err := f.do("net_redex_file_tail", func(p *C.net_redex_file_t) C.net_status_t {
		return C.net_redex_file_tail(p, C.uint64_t(from), &out)
	})
	if err != nil {
		return nil, err
	}
	return newRedexTail(out, f, from), nil
}

// shuttingDown is the ErrShuttingDown error of a call on a closed handle.
func shuttingDown(op, msg string) error {
	if abiErr != nil {
		return abiErr
	}
	return &Error{Op: op, Status: StatusShuttingDown, Message: msg}
}

// invalidConfig is a Go-side ErrRedexInvalidConfig, shaped like libnet's.
func invalidConfig(op, msg string) error {
	if abiErr != nil {
		return abiErr
	}
	return &Error{Op: op, Status: StatusRedexInvalidConfig, Message: msg}
}
