package tracestore

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/pillar-db/pillar/internal/keys"
)

// Shared string dictionary. Attribute keys, names and short values repeat
// across nearly every trace, so instead of spelling them in every span block
// a block refers to them by a store-wide ID (`t d <id>` → the string). Only
// strings up to maxDictString bytes are interned, and only until the
// dictionary holds maxDictEntries, so unique values (URLs with IDs, SQL)
// cannot make it grow without bound; they stay in their block.
const (
	maxDictString  = 64
	maxDictEntries = 1 << 20
)

// dict is the in-memory copy of the shared dictionary.
type dict struct {
	mu        sync.RWMutex
	byID      []string
	ids       map[string]uint32
	committed []bool // the ID's definition is durable in Pebble
}

func newDict() *dict { return &dict{ids: make(map[string]uint32)} }

// load reads every definition from Pebble.
func (d *dict) load(db *pebble.DB) error {
	lo := keys.AppendPrefix(nil, keys.StoreTraces, keys.KindTraceDict)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: keys.PrefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("tracestore: load dictionary: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		id, err := keys.ParseTraceDictKey(it.Key())
		if err != nil {
			it.Close()
			return fmt.Errorf("tracestore: load dictionary: %w", err)
		}
		if int(id) != len(d.byID) {
			it.Close()
			return corruptf("dictionary ID %d follows %d entries: IDs must be dense", id, len(d.byID))
		}
		s := string(it.Value())
		d.byID = append(d.byID, s)
		d.committed = append(d.committed, true)
		d.ids[s] = id
	}
	return errors.Join(it.Error(), it.Close())
}

// lookup returns the ID of s, creating one when s may be interned. It
// reports whether the ID's definition is not yet durable, in which case the
// caller's batch must carry it. ok is false when s stays in its block.
func (d *dict) lookup(s string) (id uint32, uncommitted, ok bool) {
	if len(s) > maxDictString {
		return 0, false, false
	}
	d.mu.RLock()
	id, ok = d.ids[s]
	if ok {
		uncommitted = !d.committed[id]
	}
	d.mu.RUnlock()
	if ok {
		return id, uncommitted, true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok = d.ids[s]; ok {
		return id, !d.committed[id], true
	}
	if len(d.byID) >= maxDictEntries {
		return 0, false, false
	}
	id = uint32(len(d.byID))
	s = string([]byte(s)) // do not pin the caller's memory
	d.byID = append(d.byID, s)
	d.committed = append(d.committed, false)
	d.ids[s] = id
	return id, true, true
}

// str returns the string of id.
func (d *dict) str(id uint64) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if id >= uint64(len(d.byID)) {
		return "", false
	}
	return d.byID[id], true
}

// markCommitted records that the definitions of ids are durable.
func (d *dict) markCommitted(ids []uint32) {
	if len(ids) == 0 {
		return
	}
	d.mu.Lock()
	for _, id := range ids {
		d.committed[id] = true
	}
	d.mu.Unlock()
}
