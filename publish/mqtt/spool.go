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
)

// Spool file format.
//
// A spool directory holds segment files "seg-<first seq, 20 digits>.log" and
// one "head" file. A segment is a sequence of records:
//
//	magic  u32  "SRQ1" (0x53525131), big endian
//	length u32  length of body
//	crc    u32  CRC-32C (Castagnoli) of body
//	body        seq u64 (big endian), then the entry (encodeEntry)
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
// Recovery (open): segments are read in order; a record whose magic, length
// or CRC is wrong is skipped by scanning forward for the next valid record
// and counted as corrupt. Bytes after the last valid record of the newest
// segment that do not form a complete record are a torn write and are
// truncated away. Records below the head are already delivered and ignored.
const (
	recMagic      = 0x53525131 // "SRQ1"
	headMagic     = 0x53524831 // "SRH1"
	recHeaderLen  = 12
	recSeqLen     = 8
	headLen       = 16
	headSyncEvery = time.Second
	segPrefix     = "seg-"
	segSuffix     = ".log"
	headName      = "head"
	// maxRecordBody caps one record so a corrupt length cannot make
	// recovery allocate gigabytes.
	maxRecordBody = 64 << 20
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
	Logger       *slog.Logger
	// NoSync skips fsync (fuzzing only).
	NoSync bool
}

// spoolEntry is the index of one live record.
type spoolEntry struct {
	seq  uint64
	seg  uint64 // first seq of its segment (the segment's name)
	off  int64  // offset of the record header
	size int64  // header + body
}

// segment is one segment file.
type segment struct {
	first uint64
	size  int64
	live  int // live entries in it
}

// spool is a bounded on-disk FIFO of encoded alerts; see the format above.
// All methods are safe for concurrent use.
type spool struct {
	mu       sync.Mutex
	opts     spoolOptions
	log      *slog.Logger
	entries  []spoolEntry // live entries, oldest first
	bytes    int64        // sum of entries' size
	segs     []*segment   // oldest first; the last is the active one
	active   *os.File     // open for append; nil until the first append
	headF    *os.File
	head     uint64 // first seq not acknowledged
	nextSeq  uint64
	lastSync time.Time
	dirty    bool

	dropped     uint64 // entries dropped at the bound
	corrupt     uint64 // corrupt records skipped on recovery or read
	truncated   int64  // bytes of torn tail truncated on recovery
	dropLogged  time.Time
	dropPending uint64

	maxSeq  uint64 // recovery: highest valid seq seen
	haveMax bool

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
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/8, 64<<10), 8<<20)
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
	// Recovery may find more than the (possibly lowered) bound allows.
	s.enforceBound(0)
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
	for i, first := range firsts {
		last := i == len(firsts)-1
		if err := s.recoverSegment(first, last); err != nil {
			return err
		}
	}
	// Segments without live entries are garbage now.
	kept := s.segs[:0]
	for i, sg := range s.segs {
		if sg.live == 0 && i != len(s.segs)-1 {
			s.removeSegmentFile(sg.first)
			continue
		}
		kept = append(kept, sg)
	}
	s.segs = kept
	if len(s.segs) > 0 && s.segs[len(s.segs)-1].live == 0 {
		s.removeSegmentFile(s.segs[len(s.segs)-1].first)
		s.segs = s.segs[:len(s.segs)-1]
	}
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
	return s.writeHead(true)
}

// recoverSegment indexes one segment file.
func (s *spool) recoverSegment(first uint64, last bool) error {
	path := filepath.Join(s.opts.Dir, segName(first))
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sg := &segment{first: first, size: int64(len(data))}
	off := 0
	for off < len(data) {
		seq, size, ok := decodeRecordAt(data, off)
		if ok && (s.haveMax && seq <= s.maxSeq || seq == math.MaxUint64) {
			// A valid record out of order (cannot come from Append):
			// skip it whole so the index stays sorted.
			s.corrupt++
			off += size
			continue
		}
		if ok {
			s.maxSeq, s.haveMax = seq, true
			if seq >= s.nextSeq {
				s.nextSeq = seq + 1
			}
			if seq >= s.head {
				s.entries = append(s.entries, spoolEntry{seq: seq, seg: first, off: int64(off), size: int64(size)})
				s.bytes += int64(size)
				sg.live++
			}
			off += size
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
	s.segs = append(s.segs, sg)
	return nil
}

// decodeRecordAt checks the record at off: it returns its seq and total size
// when magic, length and CRC are right.
func decodeRecordAt(data []byte, off int) (seq uint64, size int, ok bool) {
	if len(data)-off < recHeaderLen {
		return 0, 0, false
	}
	h := data[off : off+recHeaderLen]
	if binary.BigEndian.Uint32(h[0:4]) != recMagic {
		return 0, 0, false
	}
	n := binary.BigEndian.Uint32(h[4:8])
	if n < recSeqLen || n > maxRecordBody || int64(n) > int64(len(data)-off-recHeaderLen) {
		return 0, 0, false
	}
	body := data[off+recHeaderLen : off+recHeaderLen+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(h[8:12]) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(body[:8]), recHeaderLen + int(n), true
}

// findNextRecord returns the offset of the next valid record at or after
// from, or -1.
func findNextRecord(data []byte, from int) int {
	magic := []byte{0x53, 0x52, 0x51, 0x31}
	for from < len(data) {
		i := indexBytes(data[from:], magic)
		if i < 0 {
			return -1
		}
		if _, _, ok := decodeRecordAt(data, from+i); ok {
			return from + i
		}
		from += i + 1
	}
	return -1
}

func indexBytes(b, sep []byte) int {
	for i := 0; i+len(sep) <= len(b); i++ {
		if b[i] == sep[0] && b[i+1] == sep[1] && b[i+2] == sep[2] && b[i+3] == sep[3] {
			return i
		}
	}
	return -1
}

// encodeRecord frames one entry.
func encodeRecord(seq uint64, entry []byte) []byte {
	b := make([]byte, recHeaderLen+recSeqLen+len(entry))
	binary.BigEndian.PutUint32(b[0:4], recMagic)
	binary.BigEndian.PutUint32(b[4:8], uint32(recSeqLen+len(entry)))
	binary.BigEndian.PutUint64(b[12:20], seq)
	copy(b[20:], entry)
	binary.BigEndian.PutUint32(b[8:12], crc32.Checksum(b[12:], castagnoli))
	return b
}

// Append adds an entry at the tail, dropping the oldest entries first when
// the bound would be exceeded, and returns the entry's sequence number.
func (s *spool) Append(entry []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errSpoolClosed
	}
	size := int64(recHeaderLen + recSeqLen + len(entry))
	if size > s.opts.MaxBytes || recSeqLen+len(entry) > maxRecordBody {
		return 0, fmt.Errorf("%w: %d bytes, bound %d", errEntryTooLarge, size, s.opts.MaxBytes)
	}
	s.enforceBound(size)
	if err := s.ensureActive(); err != nil {
		return 0, err
	}
	sg := s.segs[len(s.segs)-1]
	seq := s.nextSeq
	rec := encodeRecord(seq, entry)
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
	s.entries = append(s.entries, spoolEntry{seq: seq, seg: sg.first, off: sg.size, size: size})
	s.bytes += size
	sg.size += size
	sg.live++
	s.nextSeq++
	return seq, nil
}

// ensureActive opens a new segment when there is none or the active one is
// full.
func (s *spool) ensureActive() error {
	if s.active != nil && len(s.segs) > 0 && s.segs[len(s.segs)-1].size < s.opts.SegmentBytes {
		return nil
	}
	if s.active != nil {
		if err := s.active.Close(); err != nil {
			return fmt.Errorf("spool %q: close segment: %w", s.opts.Dir, err)
		}
		s.active = nil
		// A full segment without live entries (all acked) is garbage.
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
	s.segs = append(s.segs, &segment{first: first})
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// popFront removes the oldest entry and deletes its segment once empty.
func (s *spool) popFront() {
	e := s.entries[0]
	s.entries = s.entries[1:]
	if len(s.entries) == 0 {
		s.entries = nil // let the backing array go
	}
	s.bytes -= e.size
	for i, sg := range s.segs {
		if sg.first != e.seg {
			continue
		}
		sg.live--
		if sg.live == 0 && i < len(s.segs)-1 {
			s.removeSegmentFile(sg.first)
			s.segs = slices.Delete(s.segs, i, i+1)
		}
		break
	}
}

func (s *spool) removeSegmentFile(first uint64) {
	if s.readF != nil && s.readSeg == first {
		_ = s.readF.Close()
		s.readF = nil
	}
	if err := os.Remove(filepath.Join(s.opts.Dir, segName(first))); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("spool: remove segment", "dir", s.opts.Dir, "segment", segName(first), "error", err)
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

// Next returns the oldest live entry with a sequence number above after.
// A record that fails its CRC on read (disk damage since recovery) is
// dropped, counted as corrupt and skipped.
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
		body, err := s.readRecord(e)
		if err != nil {
			return 0, nil, false, err
		}
		if body == nil {
			s.corrupt++
			s.log.Warn("spool: corrupt record skipped", "dir", s.opts.Dir, "seq", e.seq)
			s.removeAt(i)
			continue
		}
		return e.seq, body[recSeqLen:], true, nil
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
	for _, sg := range s.segs {
		if sg.first == e.seg {
			sg.live--
		}
	}
}

// readRecord reads and checks one record; nil body means corrupt.
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
	seq, size, ok := decodeRecordAt(buf, 0)
	if !ok || seq != e.seq || int64(size) != e.size {
		return nil, nil
	}
	return buf[recHeaderLen:], nil
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
