package mqtt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srdgd/srdgd/internal/seal"
)

// Spool file format.
//
// A spool directory holds segment files "seg-<first seq, 20 digits>.log" and
// one "head" file. A segment is a sequence of records:
//
//	magic  u32  "SRQ2" (0x53525132), big endian
//	length u32  length of body
//	crc    u32  CRC-32C (Castagnoli) of body
//	body        seq u64, time i64 (unix ms of the append), clear length
//	            u32 and the clear copy, then the sealed entry
//
// The sealed entry is the alert (encodeEntry) encrypted with AES-256-GCM
// (internal/seal) bound to its sequence number ("srdgd/mqtt/spool/<seq>"),
// so a record moved to another place does not open. The key is the
// gallery's, or, without one, a random key held in memory for this run only;
// the clear copy (only with such a run key) is the alert without images,
// names or candidates (redactEntry), delivered instead of the sealed entry
// when that no longer opens after a restart. No face and no name is ever
// written in the clear.
//
// Every record carries its own sequence number, so the head file only needs
// the first sequence number not yet acknowledged:
//
//	magic u32 "SRH1", seq u64, crc u32 of the 12 bytes before it
//
// Durability (fsync policy): Append writes the record and fsyncs the segment
// before it returns, so an alert that Publish accepted survives a crash or a
// power cut. A new segment file is followed by an fsync of the directory.
// The head is rewritten in place after every acknowledgement but fsynced at
// most once per headSyncEvery and on Close: after a power cut at most that
// much already-delivered history is delivered again (at least once, never
// lost). Dropped-at-the-bound entries move the head the same way.
//
// Compaction: a segment file is deleted as soon as none of its records is
// live (acknowledged, dropped at the bound or expired), the active one
// included, so with the broker up the spool directory is empty between
// alerts. The active segment is closed after SegmentBytes or SegmentMaxAge
// (default one minute), whichever comes first: an acknowledged record stays
// on disk only while a record appended less than SegmentMaxAge before or
// after it still waits for the broker. Records older than the retention are
// dropped (Expire), acknowledged or not.
//
// Recovery (open): segments are read in order; a record whose magic, length
// or CRC is wrong is skipped by scanning forward for the next valid record
// and counted as corrupt. Bytes after the last valid record of the newest
// segment that do not form a complete record are a torn write and are
// truncated away. Records below the head are already delivered and ignored.
// A record whose sealed entry does not open with the key and that has no
// clear copy is dropped and counted as corrupt (the gallery key changed).
// Segments holding "SRQ1" records (an earlier version, which spooled alerts
// in plaintext) are rewritten as "SRQ2" records (via a temporary file and a
// rename) or, if that fails, deleted; either way logged.
const (
	recMagic      = 0x53525132 // "SRQ2"
	recMagicV1    = 0x53525131 // "SRQ1": plaintext, migrated on open
	headMagic     = 0x53524831 // "SRH1"
	recHeaderLen  = 12
	recSeqLen     = 8
	recFixedLen   = recSeqLen + 8 + 4 // seq, time, clear length
	headLen       = 16
	headSyncEvery = time.Second
	segPrefix     = "seg-"
	segSuffix     = ".log"
	tmpSuffix     = ".tmp"
	headName      = "head"
	// maxRecordBody caps one record so a corrupt length cannot make
	// recovery allocate gigabytes.
	maxRecordBody = 64 << 20
	// defaultSegmentMaxAge is how long the active segment takes appends.
	defaultSegmentMaxAge = time.Minute
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// spoolOptions configures openSpool.
type spoolOptions struct {
	Dir         string
	MaxMessages int
	MaxBytes    int64
	// SegmentBytes is the size at which a new segment is started; 0 picks
	// MaxBytes/8 clamped to [64 KiB, 8 MiB].
	SegmentBytes int64
	// SegmentMaxAge is how long a segment takes appends before a new one
	// is started; 0 means one minute.
	SegmentMaxAge time.Duration
	// Sealer encrypts every entry. Required: the spool never writes an
	// alert in the clear.
	Sealer *seal.Sealer
	// Redact, when set, makes the clear copy kept next to each sealed
	// entry (nil: none). Only for a key that dies with the process.
	Redact func(entry []byte) []byte
	// Retention: entries appended longer ago are dropped by Expire (and on
	// open); 0 keeps them until the bound.
	Retention time.Duration
	// Now is the clock (tests); default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// NoSync skips fsync (fuzzing only).
	NoSync bool
}

// spoolEntry is the index of one live record.
type spoolEntry struct {
	seq  uint64
	seg  uint64 // first seq of its segment (the segment's name)
	off  int64  // offset of the record header
	size int64  // header + body
	time int64  // unix ms of the append
	// clear: the sealed entry does not open with this key (sealed by an
	// earlier run's key); deliver the clear copy.
	clear bool
}

// segment is one segment file.
type segment struct {
	first   uint64
	size    int64
	live    int       // live entries in it
	created time.Time // when it took its first append (or was recovered)
}

// spool is a bounded on-disk FIFO of encrypted alerts; see the format
// above. All methods are safe for concurrent use.
type spool struct {
	mu       sync.Mutex
	opts     spoolOptions
	log      *slog.Logger
	entries  []spoolEntry // live entries, oldest first
	bytes    int64        // sum of entries' size
	segs     []*segment   // oldest first; the last is the active one when active != nil
	active   *os.File     // open for append; nil until the next append
	headF    *os.File
	head     uint64 // first seq not acknowledged
	nextSeq  uint64
	lastSync time.Time
	dirty    bool

	dropped     uint64 // entries dropped at the bound
	expired     uint64 // entries dropped for the retention
	corrupt     uint64 // corrupt records skipped on recovery or read
	truncated   int64  // bytes of torn tail truncated on recovery
	dropLogged  time.Time
	dropPending uint64

	// recovery
	maxSeq     uint64 // highest valid seq seen
	haveMax    bool
	foreign    int // records sealed with another key, dropped
	clearOnly  int // records whose clear copy will be delivered
	migrated   int // plaintext records of an earlier version re-sealed
	plainGone  int // plaintext records of an earlier version dropped
	recoverNow time.Time

	readF   *os.File // cached reader for one segment
	readSeg uint64

	closed bool
}

// Spool errors.
var (
	errSpoolClosed   = errors.New("spool closed")
	errEntryTooLarge = errors.New("alert larger than the spool bound")
)

func segName(first uint64) string {
	return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix)
}

// spoolAD binds a sealed entry to its record.
func spoolAD(seq uint64) string { return "srdgd/mqtt/spool/" + strconv.FormatUint(seq, 10) }

// openSpool opens (creating it if needed) and recovers the spool in
// opts.Dir.
func openSpool(opts spoolOptions) (*spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: directory is empty")
	}
	if opts.MaxMessages < 1 {
		return nil, fmt.Errorf("spool: max messages %d: must be >= 1", opts.MaxMessages)
	}
	if opts.MaxBytes < 1 {
		return nil, fmt.Errorf("spool: max bytes %d: must be >= 1", opts.MaxBytes)
	}
	if opts.Sealer == nil {
		return nil, errors.New("spool: no key: alerts are never spooled in the clear")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/8, 64<<10), 8<<20)
	}
	if opts.SegmentMaxAge <= 0 {
		opts.SegmentMaxAge = defaultSegmentMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool %q: %w", opts.Dir, err)
	}
	s := &spool{opts: opts, log: opts.Logger}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("spool %q: recover: %w", opts.Dir, err)
	}
	// Recovery may find more than the (possibly lowered) bound allows, and
	// entries past the retention.
	s.enforceBound(0)
	s.expire()
	return s, nil
}

func (s *spool) recover() error {
	hf, err := os.OpenFile(filepath.Join(s.opts.Dir, headName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	s.headF = hf
	var hb [headLen]byte
	n, err := io.ReadFull(hf, hb[:])
	switch {
	case err == nil && binary.BigEndian.Uint32(hb[0:4]) == headMagic &&
		crc32.Checksum(hb[:12], castagnoli) == binary.BigEndian.Uint32(hb[12:16]):
		s.head = binary.BigEndian.Uint64(hb[4:12])
	case n == 0:
		// new spool
	default:
		// A torn or corrupt head: redeliver everything still on disk
		// (duplicates, never loss).
		s.log.Warn("spool head unreadable, redelivering all spooled alerts", "dir", s.opts.Dir)
		s.head = 0
	}

	des, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return err
	}
	var firsts []uint64
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, segPrefix) && strings.HasSuffix(name, segSuffix+tmpSuffix) {
			// an interrupted migration: the segment itself is intact
			s.removeFile(name)
			continue
		}
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) || !de.Type().IsRegular() {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		firsts = append(firsts, v)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	s.nextSeq = s.head
	s.recoverNow = s.opts.Now()
	for i, first := range firsts {
		last := i == len(firsts)-1
		if err := s.recoverSegment(first, last); err != nil {
			return err
		}
	}
	// Segments without live entries are garbage now, the last one too.
	kept := s.segs[:0]
	for _, sg := range s.segs {
		if sg.live == 0 {
			s.removeSegmentFile(sg.first)
			continue
		}
		kept = append(kept, sg)
	}
	s.segs = kept
	if len(s.entries) > 0 {
		s.head = s.entries[0].seq
	} else {
		s.head = s.nextSeq
	}
	if len(s.segs) > 0 {
		sg := s.segs[len(s.segs)-1]
		f, err := os.OpenFile(filepath.Join(s.opts.Dir, segName(sg.first)), os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		s.active = f
	}
	if s.corrupt > 0 || s.truncated > 0 {
		s.log.Warn("spool recovered with damage", "dir", s.opts.Dir,
			"corrupt_records", s.corrupt, "truncated_bytes", s.truncated, "entries", len(s.entries))
	}
	if s.foreign > 0 {
		s.log.Warn("spooled alerts sealed with another key dropped (was the gallery key replaced or removed?)",
			"dir", s.opts.Dir, "count", s.foreign)
	}
	if s.clearOnly > 0 {
		s.log.Warn("alerts spooled by an earlier run without a gallery key are delivered without images and names",
			"dir", s.opts.Dir, "count", s.clearOnly)
	}
	if s.migrated > 0 || s.plainGone > 0 {
		s.log.Warn("spool of an earlier version held alerts in plaintext: encrypted them and deleted the plaintext",
			"dir", s.opts.Dir, "encrypted", s.migrated, "dropped", s.plainGone)
	}
	return s.writeHead(true)
}

// recoverSegment indexes one segment file and rewrites it when it holds
// plaintext records of an earlier version.
func (s *spool) recoverSegment(first uint64, last bool) error {
	path := filepath.Join(s.opts.Dir, segName(first))
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sg := &segment{first: first, size: int64(len(data)), created: s.recoverNow}
	from := len(s.entries)
	plain := 0 // v1 records, live or not
	off := 0
	for off < len(data) {
		r, ok := decodeRecordAt(data, off)
		if ok && (s.haveMax && r.seq <= s.maxSeq || r.seq == math.MaxUint64) {
			// A valid record out of order (cannot come from Append):
			// skip it whole so the index stays sorted.
			s.corrupt++
			off += r.size
			continue
		}
		if ok {
			s.maxSeq, s.haveMax = r.seq, true
			if r.seq >= s.nextSeq {
				s.nextSeq = r.seq + 1
			}
			if r.v1 {
				plain++
			}
			if r.seq >= s.head {
				e := spoolEntry{seq: r.seq, seg: first, off: int64(off), size: int64(r.size), time: r.time}
				keep := true
				if !r.v1 {
					if _, err := s.opts.Sealer.Open(r.sealed, spoolAD(r.seq)); err != nil {
						if len(r.clear) > 0 {
							e.clear = true
							s.clearOnly++
						} else {
							keep = false
							s.foreign++
							s.corrupt++
						}
					}
				}
				if keep {
					s.entries = append(s.entries, e)
					s.bytes += e.size
					sg.live++
				}
			}
			off += r.size
			continue
		}
		next := findNextRecord(data, off+1)
		if next < 0 {
			if last {
				s.truncated += int64(len(data) - off)
				if err := os.Truncate(path, int64(off)); err != nil {
					return err
				}
				sg.size = int64(off)
			} else {
				s.corrupt++
			}
			break
		}
		s.corrupt++
		off = next
	}
	if plain > 0 {
		s.migrateSegment(sg, data, from, path)
	}
	s.segs = append(s.segs, sg)
	return nil
}

// migrateSegment rewrites the segment sg (its bytes in data, its live
// entries s.entries[from:]) with every live record sealed, through a
// temporary file renamed over it. If that fails the segment is deleted:
// plaintext faces are not left on disk either way.
func (s *spool) migrateSegment(sg *segment, data []byte, from int, path string) {
	live := s.entries[from:]
	mtime := s.recoverNow
	if st, err := os.Stat(path); err == nil {
		mtime = st.ModTime()
	}
	var out []byte
	moved := make([]spoolEntry, 0, len(live))
	for _, e := range live {
		rec := data[e.off : e.off+e.size]
		if r, _ := decodeRecordAt(rec, 0); r.v1 {
			// v1 records carry no time: their segment's last write
			// bounds it (they expire a little late, never early)
			r.time = mtime.UnixMilli()
			sealed, err := s.opts.Sealer.Seal(r.entry, spoolAD(e.seq))
			if err != nil {
				s.dropMigration(sg, from, path, err)
				return
			}
			var clear []byte
			if s.opts.Redact != nil {
				clear = s.opts.Redact(r.entry)
			}
			rec = encodeRecord(e.seq, r.time, clear, sealed)
			e.time = r.time
		}
		e.off, e.size = int64(len(out)), int64(len(rec))
		out = append(out, rec...)
		moved = append(moved, e)
	}
	if len(moved) == 0 {
		return // nothing live: recover deletes the segment
	}
	tmp := path + tmpSuffix
	if err := s.writeFileSync(tmp, out); err != nil {
		s.removeFile(filepath.Base(tmp))
		s.dropMigration(sg, from, path, err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		s.removeFile(filepath.Base(tmp))
		s.dropMigration(sg, from, path, err)
		return
	}
	if !s.opts.NoSync {
		if err := syncDir(s.opts.Dir); err != nil {
			s.log.Warn("spool: fsync directory after migration", "dir", s.opts.Dir, "error", err)
		}
	}
	for _, e := range moved {
		s.bytes += e.size
	}
	for _, e := range live {
		s.bytes -= e.size
	}
	copy(s.entries[from:], moved)
	s.migrated += len(moved)
	sg.size = int64(len(out))
}

// dropMigration deletes a plaintext segment that could not be rewritten,
// with its live entries (s.entries[from:]).
func (s *spool) dropMigration(sg *segment, from int, path string, err error) {
	n := len(s.entries) - from
	for _, e := range s.entries[from:] {
		s.bytes -= e.size
	}
	s.entries = s.entries[:from]
	s.plainGone += n
	sg.live, sg.size = 0, 0
	s.log.Warn("spool: could not encrypt a plaintext segment of an earlier version, deleted it",
		"dir", s.opts.Dir, "segment", filepath.Base(path), "alerts", n, "error", err)
}

func (s *spool) writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if !s.opts.NoSync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// record is one decoded record. For v1 records entry is the plaintext
// entry; for v2 clear and sealed are set.
type record struct {
	seq    uint64
	size   int // header + body
	time   int64
	v1     bool
	entry  []byte
	clear  []byte
	sealed []byte
}

// decodeRecordAt checks the record at off: ok when magic, length, CRC and
// (for v2) the inner lengths are right.
func decodeRecordAt(data []byte, off int) (record, bool) {
	if len(data)-off < recHeaderLen {
		return record{}, false
	}
	h := data[off : off+recHeaderLen]
	magic := binary.BigEndian.Uint32(h[0:4])
	if magic != recMagic && magic != recMagicV1 {
		return record{}, false
	}
	n := binary.BigEndian.Uint32(h[4:8])
	minLen := uint32(recFixedLen)
	if magic == recMagicV1 {
		minLen = recSeqLen
	}
	if n < minLen || n > maxRecordBody || int64(n) > int64(len(data)-off-recHeaderLen) {
		return record{}, false
	}
	body := data[off+recHeaderLen : off+recHeaderLen+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(h[8:12]) {
		return record{}, false
	}
	r := record{seq: binary.BigEndian.Uint64(body[:8]), size: recHeaderLen + int(n)}
	if magic == recMagicV1 {
		r.v1, r.entry = true, body[recSeqLen:]
		return r, true
	}
	r.time = int64(binary.BigEndian.Uint64(body[8:16]))
	cl := binary.BigEndian.Uint32(body[16:20])
	if uint64(cl) > uint64(len(body)-recFixedLen) {
		return record{}, false
	}
	r.clear = body[recFixedLen : recFixedLen+int(cl)]
	r.sealed = body[recFixedLen+int(cl):]
	return r, true
}

// findNextRecord returns the offset of the next valid record at or after
// from, or -1.
func findNextRecord(data []byte, from int) int {
	for ; from+4 <= len(data); from++ {
		if data[from] != 0x53 || data[from+1] != 0x52 || data[from+2] != 0x51 || (data[from+3] != 0x31 && data[from+3] != 0x32) {
			continue
		}
		if _, ok := decodeRecordAt(data, from); ok {
			return from
		}
	}
	return -1
}

// encodeRecord frames one sealed entry and its clear copy (nil: none).
func encodeRecord(seq uint64, timeMs int64, clear, sealed []byte) []byte {
	body := recFixedLen + len(clear) + len(sealed)
	b := make([]byte, recHeaderLen+body)
	binary.BigEndian.PutUint32(b[0:4], recMagic)
	binary.BigEndian.PutUint32(b[4:8], uint32(body))
	binary.BigEndian.PutUint64(b[12:20], seq)
	binary.BigEndian.PutUint64(b[20:28], uint64(timeMs))
	binary.BigEndian.PutUint32(b[28:32], uint32(len(clear)))
	copy(b[32:], clear)
	copy(b[32+len(clear):], sealed)
	binary.BigEndian.PutUint32(b[8:12], crc32.Checksum(b[12:], castagnoli))
	return b
}

// Append seals an entry and adds it at the tail, dropping the oldest entries
// first when the bound would be exceeded, and returns the entry's sequence
// number.
func (s *spool) Append(entry []byte) (uint64, error) {
	var clear []byte
	if s.opts.Redact != nil {
		clear = s.opts.Redact(entry)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errSpoolClosed
	}
	seq := s.nextSeq
	sealed, err := s.opts.Sealer.Seal(entry, spoolAD(seq))
	if err != nil {
		return 0, fmt.Errorf("spool %q: seal: %w", s.opts.Dir, err)
	}
	body := recFixedLen + len(clear) + len(sealed)
	size := int64(recHeaderLen + body)
	if size > s.opts.MaxBytes || body > maxRecordBody {
		return 0, fmt.Errorf("%w: %d bytes, bound %d", errEntryTooLarge, size, s.opts.MaxBytes)
	}
	s.enforceBound(size)
	now := s.opts.Now()
	if err := s.ensureActive(now); err != nil {
		return 0, err
	}
	sg := s.segs[len(s.segs)-1]
	rec := encodeRecord(seq, now.UnixMilli(), clear, sealed)
	if _, err := s.active.WriteAt(rec, sg.size); err != nil {
		// Leave no partial record behind; recovery would also cut it.
		_ = s.active.Truncate(sg.size)
		return 0, fmt.Errorf("spool %q: append: %w", s.opts.Dir, err)
	}
	if !s.opts.NoSync {
		if err := s.active.Sync(); err != nil {
			_ = s.active.Truncate(sg.size)
			return 0, fmt.Errorf("spool %q: fsync: %w", s.opts.Dir, err)
		}
	}
	s.entries = append(s.entries, spoolEntry{seq: seq, seg: sg.first, off: sg.size, size: size, time: now.UnixMilli()})
	s.bytes += size
	sg.size += size
	sg.live++
	s.nextSeq++
	return seq, nil
}

// ensureActive opens a new segment when there is none or the active one is
// full or older than SegmentMaxAge.
func (s *spool) ensureActive(now time.Time) error {
	if s.active != nil && len(s.segs) > 0 {
		sg := s.segs[len(s.segs)-1]
		if sg.size < s.opts.SegmentBytes && now.Sub(sg.created) < s.opts.SegmentMaxAge {
			return nil
		}
	}
	if s.active != nil {
		if err := s.active.Close(); err != nil {
			return fmt.Errorf("spool %q: close segment: %w", s.opts.Dir, err)
		}
		s.active = nil
		// A closed segment without live entries (all acked) is garbage.
		if sg := s.segs[len(s.segs)-1]; sg.live == 0 {
			s.removeSegmentFile(sg.first)
			s.segs = s.segs[:len(s.segs)-1]
		}
	}
	first := s.nextSeq
	f, err := os.OpenFile(filepath.Join(s.opts.Dir, segName(first)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool %q: new segment: %w", s.opts.Dir, err)
	}
	if !s.opts.NoSync {
		if err := syncDir(s.opts.Dir); err != nil {
			_ = f.Close()
			return fmt.Errorf("spool %q: fsync directory: %w", s.opts.Dir, err)
		}
	}
	s.active = f
	s.segs = append(s.segs, &segment{first: first, created: now})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// enforceBound drops the oldest entries until one more of size fits.
func (s *spool) enforceBound(size int64) {
	n := 0
	for len(s.entries) > 0 && (len(s.entries)+boolInt(size > 0) > s.opts.MaxMessages || s.bytes+size > s.opts.MaxBytes) {
		s.popFront()
		n++
	}
	if n == 0 {
		return
	}
	s.dropped += uint64(n)
	s.dropPending += uint64(n)
	s.moveHead()
	if now := time.Now(); now.Sub(s.dropLogged) >= 10*time.Second {
		s.log.Warn("spool full, dropped oldest alerts", "dir", s.opts.Dir, "dropped", s.dropPending,
			"dropped_total", s.dropped, "max_messages", s.opts.MaxMessages, "max_bytes", s.opts.MaxBytes)
		s.dropLogged = now
		s.dropPending = 0
	}
}

// Expire drops the entries appended longer than the retention ago, sent or
// not, and returns how many.
func (s *spool) Expire() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	return s.expire()
}

func (s *spool) expire() int {
	if s.opts.Retention <= 0 {
		return 0
	}
	cut := s.opts.Now().Add(-s.opts.Retention).UnixMilli()
	n := 0
	// Appends are in time order (up to clock steps): the oldest are first.
	for len(s.entries) > 0 && s.entries[0].time < cut {
		s.popFront()
		n++
	}
	if n > 0 {
		s.expired += uint64(n)
		s.moveHead()
		s.log.Info("spool: dropped alerts older than the hit retention", "dir", s.opts.Dir, "count", n,
			"expired_total", s.expired, "retention", s.opts.Retention.String())
	}
	return n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// popFront removes the oldest entry.
func (s *spool) popFront() {
	e := s.entries[0]
	s.entries = s.entries[1:]
	if len(s.entries) == 0 {
		s.entries = nil // let the backing array go
	}
	s.bytes -= e.size
	s.segmentLost(e.seg)
}

// segmentLost counts one entry of segment first as gone and deletes the
// segment file once none is left, the active one included (the next append
// starts a new one).
func (s *spool) segmentLost(first uint64) {
	for i, sg := range s.segs {
		if sg.first != first {
			continue
		}
		sg.live--
		if sg.live > 0 {
			return
		}
		if i == len(s.segs)-1 && s.active != nil {
			if err := s.active.Close(); err != nil {
				s.log.Warn("spool: close segment", "dir", s.opts.Dir, "error", err)
			}
			s.active = nil
		}
		s.removeSegmentFile(sg.first)
		s.segs = slices.Delete(s.segs, i, i+1)
		return
	}
}

func (s *spool) removeSegmentFile(first uint64) {
	if s.readF != nil && s.readSeg == first {
		_ = s.readF.Close()
		s.readF = nil
	}
	s.removeFile(segName(first))
}

func (s *spool) removeFile(name string) {
	if err := os.Remove(filepath.Join(s.opts.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("spool: remove file", "dir", s.opts.Dir, "file", name, "error", err)
	}
}

// moveHead records the new head after pops.
func (s *spool) moveHead() {
	if len(s.entries) > 0 {
		s.head = s.entries[0].seq
	} else {
		s.head = s.nextSeq
	}
	if err := s.writeHead(false); err != nil {
		s.log.Warn("spool: write head", "dir", s.opts.Dir, "error", err)
	}
}

func (s *spool) writeHead(forceSync bool) error {
	var b [headLen]byte
	binary.BigEndian.PutUint32(b[0:4], headMagic)
	binary.BigEndian.PutUint64(b[4:12], s.head)
	binary.BigEndian.PutUint32(b[12:16], crc32.Checksum(b[:12], castagnoli))
	if _, err := s.headF.WriteAt(b[:], 0); err != nil {
		return err
	}
	s.dirty = true
	if s.opts.NoSync {
		return nil
	}
	if now := time.Now(); forceSync || now.Sub(s.lastSync) >= headSyncEvery {
		s.lastSync = now
		s.dirty = false
		return s.headF.Sync()
	}
	return nil
}

// Next returns the oldest live entry with a sequence number above after,
// opened (or its clear copy, for an entry sealed by an earlier run's key).
// A record that fails its CRC or does not open on read (disk damage since
// recovery) is dropped, counted as corrupt and skipped.
func (s *spool) Next(after uint64, haveAfter bool) (seq uint64, entry []byte, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil, false, errSpoolClosed
	}
	for {
		i := 0
		if haveAfter {
			i = sort.Search(len(s.entries), func(i int) bool { return s.entries[i].seq > after })
		}
		if i >= len(s.entries) {
			return 0, nil, false, nil
		}
		e := s.entries[i]
		entry, err := s.readRecord(e)
		if err != nil {
			return 0, nil, false, err
		}
		if entry == nil {
			s.corrupt++
			s.log.Warn("spool: corrupt record skipped", "dir", s.opts.Dir, "seq", e.seq)
			s.removeAt(i)
			continue
		}
		return e.seq, entry, true, nil
	}
}

// removeAt removes entry i (a corrupt one) wherever it is.
func (s *spool) removeAt(i int) {
	if i == 0 {
		s.popFront()
		s.moveHead()
		return
	}
	e := s.entries[i]
	s.entries = slices.Delete(s.entries, i, i+1)
	s.bytes -= e.size
	s.segmentLost(e.seg)
}

// readRecord reads, checks and opens one record; nil means corrupt.
func (s *spool) readRecord(e spoolEntry) ([]byte, error) {
	if s.readF == nil || s.readSeg != e.seg {
		if s.readF != nil {
			_ = s.readF.Close()
			s.readF = nil
		}
		f, err := os.Open(filepath.Join(s.opts.Dir, segName(e.seg)))
		if err != nil {
			return nil, fmt.Errorf("spool %q: open segment: %w", s.opts.Dir, err)
		}
		s.readF, s.readSeg = f, e.seg
	}
	buf := make([]byte, e.size)
	if _, err := s.readF.ReadAt(buf, e.off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("spool %q: read: %w", s.opts.Dir, err)
	}
	r, ok := decodeRecordAt(buf, 0)
	if !ok || r.v1 || r.seq != e.seq || int64(r.size) != e.size {
		return nil, nil
	}
	if e.clear {
		return r.clear, nil
	}
	entry, err := s.opts.Sealer.Open(r.sealed, spoolAD(e.seq))
	if err != nil {
		return nil, nil
	}
	return entry, nil
}

// Ack removes the entry seq once the broker has it. Entries are acked in
// order; an ack for an entry that was dropped meanwhile is a no-op.
func (s *spool) Ack(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.entries) == 0 || s.entries[0].seq != seq {
		return
	}
	s.popFront()
	s.moveHead()
}

// Depth returns the live entries and their bytes on disk.
func (s *spool) Depth() (messages int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.bytes
}

// Dropped returns entries dropped at the bound since open.
func (s *spool) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Expired returns entries dropped for the retention since open.
func (s *spool) Expired() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expired
}

// Corrupt returns corrupt records skipped since open.
func (s *spool) Corrupt() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.corrupt
}

// Close syncs the head and closes the files.
func (s *spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.dirty && !s.opts.NoSync {
		err = s.headF.Sync()
	}
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (s *spool) closeFiles() error {
	var err error
	for _, f := range []*os.File{s.active, s.readF, s.headF} {
		if f != nil {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	s.active, s.readF, s.headF = nil, nil, nil
	return err
}
