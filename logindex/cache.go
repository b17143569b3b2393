package logindex

import (
	"container/list"
	"sync"
)

// blockCache keeps recently decoded record blocks, so repeated queries over
// the same records skip decompressing and parsing them. Cached readers are
// immutable and shared between queries. A block's records never change once
// written, but sealing merges small blocks into the first of them (a cached
// reader of that key may then hold fewer records than the block: readers
// replace it when it does not cover the record they want), and a dropped
// partition's keys may be reused (dropBefore purges them).
type blockCache struct {
	mu    sync.Mutex
	max   int // bytes of payload
	size  int
	lru   *list.List // front = most recent; values are *cacheEntry
	items map[blockID]*list.Element
}

type blockID struct{ part, first uint32 }

type cacheEntry struct {
	id blockID
	br *blockReader
}

func newBlockCache(max int) *blockCache {
	return &blockCache{max: max, lru: list.New(), items: map[blockID]*list.Element{}}
}

func (c *blockCache) get(id blockID) *blockReader {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cacheEntry).br
	}
	return nil
}

func (c *blockCache) put(id blockID, br *blockReader) {
	if c == nil || len(br.payload) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		// A reader of the same key: replace it, since the block may have
		// been merged with the ones after it.
		ce := e.Value.(*cacheEntry)
		c.size += len(br.payload) - len(ce.br.payload)
		ce.br = br
		c.lru.MoveToFront(e)
	} else {
		c.items[id] = c.lru.PushFront(&cacheEntry{id, br})
		c.size += len(br.payload)
	}
	for c.size > c.max {
		e := c.lru.Back()
		ce := e.Value.(*cacheEntry)
		c.lru.Remove(e)
		delete(c.items, ce.id)
		c.size -= len(ce.br.payload)
	}
}

// dropBelow forgets every block of the partitions below end.
func (c *blockCache) dropBelow(end uint32) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.items {
		if id.part < end {
			c.lru.Remove(e)
			delete(c.items, id)
			c.size -= len(e.Value.(*cacheEntry).br.payload)
		}
	}
}

// dropPartition forgets every block of partition part.
func (c *blockCache) dropPartition(part uint32) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.items {
		if id.part == part {
			c.lru.Remove(e)
			delete(c.items, id)
			c.size -= len(e.Value.(*cacheEntry).br.payload)
		}
	}
}
