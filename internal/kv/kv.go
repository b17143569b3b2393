// Package kv opens the Pebble instance every Pillar store writes to, with the
// durability Pillar promises.
//
// Pillar promises that a write acknowledged by Commit or Write survives a
// process crash (kill -9) by default, and a power loss with SyncWrites.
// Pebble's NoSync writes may still sit in Pebble's own log buffer when the
// call returns, so a kill -9 could lose them. Pillar therefore always commits
// with pebble.Sync, which makes Pebble hand the write-ahead log to the
// operating system before returning; without SyncWrites the file system
// below Pebble turns the log's fsync into a no-op, so the record is in the
// kernel (safe from a process crash) without paying for a disk flush.
// Tables, the manifest and directories are always synced for real, so a
// crash never leaves a store that cannot open.
package kv

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure the Pebble instance. The zero value is the default.
type Options struct {
	// SyncWrites makes every acknowledged write fsync the write-ahead log, so
	// it survives power loss, not only a process crash. Default false.
	SyncWrites bool
	// CacheSize is Pebble's block cache in bytes. Default 64 MiB.
	CacheSize int64
	// FS replaces the file system (tests use vfs.NewMem()). Default: the OS.
	FS vfs.FS
}

// memTableSize is Pebble's largest memtable (Pebble starts a new DB with a
// small one and doubles it as writes come). The metrics store's
// write-ahead entries live until their series' chunks seal (120 scrapes);
// a memtable that holds several times that many entries flushes with most
// of them already range-deleted, so they never reach a table, never get
// compacted, and Pebble's flushes and compactions shrink to the sealed
// chunks: on 5,300 series at 15 s, 64 MiB takes a third less CPU per
// sample than 8 MiB (32 MiB a little less). It is memory outside the Go
// heap, up to MemTableStopWritesThreshold (2) of them while one flushes.
const memTableSize = 64 << 20

// WriteOptions is what every store passes to Batch.Commit and Apply: always
// Sync, for the reason in the package doc.
var WriteOptions = pebble.Sync

// Open opens (creating if needed) the Pebble instance in dir.
func Open(dir string, o Options) (*pebble.DB, error) {
	fs := o.FS
	if fs == nil {
		fs = vfs.Default
	}
	if !o.SyncWrites {
		fs = walNoSyncFS{fs}
	}
	cacheSize := o.CacheSize
	if cacheSize <= 0 {
		cacheSize = 64 << 20
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{},
		// Stores write short-lived keys (tsdb's write-ahead entries are
		// deleted once their chunks seal): a memtable large enough to hold
		// them until then means they never reach a table at all.
		MemTableSize: memTableSize,
		Cleaner:      deleteNoRecycle{},
	}
	// The bottom levels hold nearly all the data once it settles; zstd
	// there shrinks it where snappy's speed matters least.
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionBalanced })
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", dir, err)
	}
	return db, nil
}

// walNoSyncFS hands out write-ahead-log files whose syncs do nothing; every
// other file syncs for real.
type walNoSyncFS struct{ vfs.FS }

func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

func (fs walNoSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return wrapWAL(name, f, err)
}

func (fs walNoSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return wrapWAL(name, f, err)
}

func (fs walNoSyncFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return wrapWAL(newname, f, err)
}

// Unwrap lets Pebble reach the underlying file system where it needs to.
func (fs walNoSyncFS) Unwrap() vfs.FS { return fs.FS }

func wrapWAL(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !isWAL(name) {
		return f, err
	}
	return walFile{f}, nil
}

// walFile is a log file whose data reaches the kernel on every Write (Pebble
// writes whole blocks through it) but is not forced to the disk.
type walFile struct{ vfs.File }

func (walFile) Sync() error                { return nil }
func (walFile) SyncData() error            { return nil }
func (walFile) SyncTo(int64) (bool, error) { return true, nil }

// deleteNoRecycle deletes obsolete files as pebble.DeleteCleaner does, and
// stops Pebble from keeping spent log files for reuse. Pebble keeps up to
// three of them, each the size of a memtable, and they stay in the
// directory after Close: with 64 MiB memtables that would be most of a
// small store's disk bytes. Reusing a log file only saves creating one per
// memtable. Pebble recycles no log when its cleaner needs the files'
// contents, which pebble.ArchiveCleaner declares with an unexported marker
// method; the marker is embedded one level deeper than DeleteCleaner, so
// Clean and String come from DeleteCleaner.
type deleteNoRecycle struct {
	pebble.DeleteCleaner
	noRecycleMarker
}

type noRecycleMarker struct{ pebble.ArchiveCleaner }

// quietLogger keeps Pebble's informational chatter out of the host's output;
// errors still surface through the calls that hit them.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
