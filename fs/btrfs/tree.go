package btrfs

import (
	"fmt"
	"strings"

	"github.com/vzsalvage/vzsalvage/fs"
)

// block is a tree block that passed its checks, read from one copy.
type block struct {
	data  []byte
	phys  int64 // device offset of the copy read
	level int
	n     int // number of items or pointers
}

// item is one leaf item. data aliases a cached block: never modify it.
type item struct {
	key  key
	data []byte
	at   int64 // device offset of the item's data
	leaf int64 // device offset of the leaf (the copy read)
}

// treeBlock returns the tree block at logical address l, from the first
// copy whose checksum, address, fsid and level hold (level < 0: any).
func (f *FS) treeBlock(l uint64, level int) (*block, error) {
	if b, ok := f.cache.Get(l); ok {
		if level >= 0 && b.level != level {
			return nil, errDamaged("tree block %d: level %d, want %d", l, b.level, level)
		}
		return b, nil
	}
	if l == 0 || l%uint64(f.ss) != 0 {
		return nil, errDamaged("tree block address %d", l)
	}
	copies, err := f.chunks.physical(l, f.ns)
	if err != nil {
		return nil, errDamaged("tree block %d: %v", l, err)
	}
	var why []string
	for _, p := range f.order(copies, f.ns) {
		buf := make([]byte, f.ns)
		if err := f.readAt(buf, p); err != nil {
			why = append(why, err.Error())
			continue
		}
		b, err := f.checkBlock(buf, l, level)
		if err != nil {
			why = append(why, fmt.Sprintf("copy at %d: %v", p, err))
			continue
		}
		b.phys = p
		f.cache.Put(l, b)
		return b, nil
	}
	return nil, errDamaged("tree block %d: %s", l, strings.Join(why, "; "))
}

// checkBlock validates a tree block read for logical address l.
func (f *FS) checkBlock(buf []byte, l uint64, level int) (*block, error) {
	switch {
	case !f.cs.verify(buf):
		return nil, fmt.Errorf("checksum mismatch")
	case le.Uint64(buf[hdrBytenr:]) != l:
		return nil, fmt.Errorf("header says it is block %d", le.Uint64(buf[hdrBytenr:]))
	case [16]byte(buf[hdrFsid:hdrFsid+16]) != f.sb.metaUUID:
		return nil, fmt.Errorf("another filesystem's block")
	}
	b := &block{data: buf, level: int(buf[hdrLevel]), n: int(le.Uint32(buf[hdrNritems:]))}
	per := itemSize
	if b.level > 0 {
		per = keyPtrSize
	}
	switch {
	case b.level > maxLevel || level >= 0 && b.level != level:
		return nil, fmt.Errorf("level %d, want %d", b.level, level)
	case b.n > (len(buf)-headerSize)/per:
		return nil, fmt.Errorf("%d items", b.n)
	}
	return b, nil
}

// leafItem returns item i of a leaf, or false if it does not fit.
func (b *block) leafItem(i int) (item, bool) {
	p := headerSize + i*itemSize
	k := parseKey(b.data[p:])
	off, size := int(le.Uint32(b.data[p+17:])), int(le.Uint32(b.data[p+21:]))
	start := headerSize + off
	if off < 0 || size < 0 || start < headerSize || start > len(b.data) || size > len(b.data)-start {
		return item{key: k}, false
	}
	return item{key: k, data: b.data[start : start+size : start+size], at: b.phys + int64(start), leaf: b.phys}, true
}

// ptr returns pointer i of an internal node.
func (b *block) ptr(i int) (key, uint64) {
	p := headerSize + i*keyPtrSize
	return parseKey(b.data[p:]), le.Uint64(b.data[p+17:])
}

// lostRange is a key range of a tree that could not be read.
type lostRange struct {
	lo, hi key
	err    error
}

// treeError lists the parts of a tree an iteration could not read. It
// wraps fs.ErrDamaged.
type treeError struct{ lost []lostRange }

func (e *treeError) Error() string {
	s := fmt.Sprintf("btrfs: keys %v to %v unreadable: %v", e.lost[0].lo, e.lost[0].hi, e.lost[0].err)
	if len(e.lost) > 1 {
		s += fmt.Sprintf(" (and %d more ranges)", len(e.lost)-1)
	}
	return s
}

func (e *treeError) Unwrap() error { return fs.ErrDamaged }

const maxLost = 1 << 16

var maxKey = key{^uint64(0), 0xff, ^uint64(0)}

// iterate calls fn for each item of the tree at root with lo <= key <= hi,
// in key order, until fn returns false. Subtrees that cannot be read are
// skipped and returned as a *treeError (nil if none).
func (f *FS) iterate(root treeRoot, lo, hi key, fn func(item) bool) error {
	te := &treeError{}
	f.walk(root.bytenr, int(root.level), key{}, maxKey, lo, hi, fn, te)
	if len(te.lost) == 0 {
		return nil
	}
	return te
}

// walk visits the block at l, responsible for keys in [spanLo, spanHi].
// It returns false when fn asked to stop or the range is done.
func (f *FS) walk(l uint64, level int, spanLo, spanHi, lo, hi key, fn func(item) bool, te *treeError) bool {
	b, err := f.treeBlock(l, level)
	if err != nil {
		if len(te.lost) < maxLost {
			te.lost = append(te.lost, lostRange{maxOf(spanLo, lo), minOf(spanHi, hi), err})
		}
		return true
	}
	if b.level == 0 {
		for i := range b.n {
			it, ok := b.leafItem(i)
			switch {
			case it.key.cmp(lo) < 0:
				continue
			case it.key.cmp(hi) > 0:
				return false
			case !ok:
				if len(te.lost) < maxLost {
					te.lost = append(te.lost, lostRange{it.key, it.key, errDamaged("leaf %d: item %d out of bounds", l, i)})
				}
				continue
			}
			if !fn(it) {
				return false
			}
		}
		return true
	}
	for i := range b.n {
		k, child := b.ptr(i)
		next := spanHi
		if i+1 < b.n {
			next, _ = b.ptr(i + 1)
			if next.cmp(lo) <= 0 {
				continue
			}
		}
		if k.cmp(hi) > 0 {
			return false
		}
		if !f.walk(child, b.level-1, k, next, lo, hi, fn, te) {
			return false
		}
	}
	return true
}

// last returns the item with the largest key <= k, if one can be read.
func (f *FS) last(root treeRoot, k key) (item, bool) {
	l, level := root.bytenr, int(root.level)
	for range maxLevel + 1 {
		b, err := f.treeBlock(l, level)
		if err != nil || b.n == 0 {
			return item{}, false
		}
		if b.level == 0 {
			for i := b.n - 1; i >= 0; i-- {
				if it, ok := b.leafItem(i); ok && it.key.cmp(k) <= 0 {
					return it, true
				}
			}
			return item{}, false
		}
		j := -1
		for i := range b.n {
			if pk, _ := b.ptr(i); pk.cmp(k) <= 0 {
				j = i
			} else {
				break
			}
		}
		if j < 0 {
			return item{}, false
		}
		_, l = b.ptr(j)
		level = b.level - 1
	}
	return item{}, false
}

func maxOf(a, b key) key {
	if a.cmp(b) > 0 {
		return a
	}
	return b
}

func minOf(a, b key) key {
	if a.cmp(b) < 0 {
		return a
	}
	return b
}
