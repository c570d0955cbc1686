package rescue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/report"
	"github.com/vzsalvage/vzsalvage/vma"
)

// Donor re-decoding of the newest backup.
//
// Most of what one hit destroys in a .vma.zst is not the few zstd blocks
// the garbage covers but their copies: later matches copy the lost bytes
// forward. The lost bytes are mostly clusters that did not change between
// nights. So the newest archive is decoded a second time (codec.Donor),
// with the lost output taken from an older night's image at the same
// device offsets (mapped through the VMA extents the first pass read) and
// the losses of unknown length given the true lengths the extent
// arithmetic established: every match that copied lost bytes now yields
// the older night's. When the frame's checksum then matches, the newest
// night is the original bit for bit. When it does not, bytes that depend
// on donated bytes are "from another night" (report.Donor sources, files
// mixed), bytes that depend on nothing unknown are intact, the rest stay
// damaged.

// maxRedoPasses bounds the second passes (one per older night at most).
const maxRedoPasses = 2

// genImage is an older night's image of a device, as a donor.
type genImage struct {
	archive string
	f       *os.File
	dmg     *damage.Map
}

// donorDev is what a donor knows of one device.
type donorDev struct {
	size   int64
	newest *os.File    // the newest night's first-pass image
	known  *damage.Map // its damage: the bytes it does not know
	gens   []genImage
	agree  agreeCache // (gen, cluster): the gen agrees with every known byte
}

// nightDonor gives a second pass over the newest archive the older
// nights' bytes.
type nightDonor struct {
	m     *extract.StreamMap
	loss  map[int64]codec.Loss
	devs  map[uint8]*donorDev
	first int // the gen preferred in this pass
	// frozen: every agreement was computed before the pass (agreeAll);
	// the newest's images may change during it and are not read
	frozen bool
	used   map[string]int64
	err    error
	a, b   []byte
}

// newNightDonor builds the donor for the newest backup's first pass.
func newNightDonor(newest *extract.Result, newestDir string, olds []*extract.Result) (*nightDonor, error) {
	m := newest.Map
	d := &nightDonor{m: m, loss: map[int64]codec.Loss{}, devs: map[uint8]*donorDev{}, used: map[string]int64{},
		a: make([]byte, clusterSize), b: make([]byte, clusterSize)}
	if m.Trusted {
		known := map[int64]int64{}
		for _, k := range m.Known {
			known[k.Off] = k.Len
		}
		for _, l := range m.Losses {
			if n, ok := known[l.Off]; ok && l.Resume >= 0 {
				d.loss[l.Off] = codec.Loss{Off: l.Off, Len: n, Resume: l.Resume}
			}
		}
	}
	for _, dev := range newest.Report.Devices {
		dd := &donorDev{size: dev.Size, known: dev.Damage}
		f, err := os.Open(filepath.Join(newestDir, dev.Image))
		if err != nil {
			d.close()
			return nil, err
		}
		dd.newest = f
		for _, o := range olds {
			for _, od := range o.Report.Devices {
				if od.Name != dev.Name || od.Size != dev.Size {
					continue
				}
				g, err := os.Open(o.Images[od.Name])
				if err != nil {
					d.close()
					return nil, err
				}
				dd.gens = append(dd.gens, genImage{archive: o.Report.Archives[0].Path, f: g, dmg: od.Damage})
			}
		}
		d.devs[uint8(dev.ID)] = dd
	}
	return d, nil
}

func (d *nightDonor) close() {
	for _, dd := range d.devs {
		if dd.newest != nil {
			dd.newest.Close()
		}
		for _, g := range dd.gens {
			g.f.Close()
		}
	}
}

// gens returns how many older nights could donate to some device.
func (d *nightDonor) gens() int {
	n := 0
	for _, dd := range d.devs {
		n = max(n, len(dd.gens))
	}
	return n
}

// Loss implements codec.Donor.
func (d *nightDonor) Loss(off int64) (codec.Loss, bool) {
	l, ok := d.loss[off]
	return l, ok
}

// Donate implements codec.Donor: each placed block of [off, off+len(p))
// takes the bytes of an older night that has them clean, preferring one
// whose cluster agrees with every byte the newest night knows in it.
func (d *nightDonor) Donate(off int64, p []byte) []codec.Piece {
	var out []codec.Piece
	end := off + int64(len(p))
	for o := off; o < end && d.err == nil; {
		blk, ok := d.m.Block(o)
		if !ok {
			o = d.nextBlock(o, end)
			continue
		}
		hi := min(blk.Off+vma.BlockSize, end)
		dd := d.devs[blk.Dev]
		devOff := blk.DevOff + (o - blk.Off)
		n := hi - o
		if dd != nil && devOff+n <= dd.size {
			if g := d.choose(dd, devOff, n); g != nil {
				if err := readFull(g.f, p[o-off:hi-off], devOff); err != nil {
					d.err = err
					break
				}
				d.used[g.archive] += n
				if k := len(out); k > 0 && out[k-1].Off+out[k-1].Len == o {
					out[k-1].Len += n
				} else {
					out = append(out, codec.Piece{Off: o, Len: n})
				}
			}
		}
		o = hi
	}
	return out
}

// nextBlock returns the start of the first placed block after o (or end).
func (d *nightDonor) nextBlock(o, end int64) int64 {
	if n := d.m.Next(o); n > o {
		return min(n, end)
	}
	return end
}

// choose returns the older night to take [devOff, devOff+n) from: one
// with those bytes clean, in this pass's order, agreeing ones first.
func (d *nightDonor) choose(dd *donorDev, devOff, n int64) *genImage {
	var fallback *genImage
	for k := range dd.gens {
		i := (k + d.first) % len(dd.gens)
		g := &dd.gens[i]
		if g.dmg.Any(devOff, n, damage.Tainted) {
			continue
		}
		ok, _, err := d.agrees(dd, i, devOff/clusterSize)
		if err != nil {
			d.err = err
			return nil
		}
		if ok {
			return g
		}
		if fallback == nil {
			fallback = g
		}
	}
	return fallback
}

// agrees reports whether older night i's cluster agrees with every byte
// the newest night knows in it (where the older night has it clean too),
// and how many known bytes it compared.
func (d *nightDonor) agrees(dd *donorDev, i int, cluster int64) (bool, int64, error) {
	key := [2]int64{int64(i), cluster}
	if ok, seen := dd.agree.get(key); seen {
		return ok, 0, nil
	}
	if d.frozen {
		return false, 0, fmt.Errorf("rescue: cluster %d not compared before the second pass", cluster)
	}
	off := cluster * clusterSize
	n := min(int64(clusterSize), dd.size-off)
	ok, same, err := agreeKnown(dd.newest, dd.known, dd.gens[i].f, dd.gens[i].dmg, off, n, d.a, d.b)
	if err != nil {
		return false, 0, err
	}
	dd.agree.put(key, ok)
	return ok, same, nil
}

// agreeCache remembers, per (older night, cluster), whether the night
// agrees with every byte the newest knows there. It holds at most
// maxAgree answers (a few tens of bytes each: ~4 MiB): past that it starts
// over, and a cluster asked again is compared again, with the same answer.
type agreeCache struct{ m map[[2]int64]bool }

// maxAgree is a var for tests.
var maxAgree = 1 << 16

func (c *agreeCache) get(key [2]int64) (ok, seen bool) {
	ok, seen = c.m[key]
	return ok, seen
}

func (c *agreeCache) put(key [2]int64, ok bool) {
	if c.m == nil || len(c.m) >= maxAgree {
		c.m = map[[2]int64]bool{} // a new map: the old one's buckets are freed
	}
	c.m[key] = ok
}

// agreeKnown compares [off, off+n) of two images where the first knows its
// bytes (outside knownDmg) and the second has them clean (outside
// altDmg): it reports whether they agree there, and how many bytes were
// compared.
func agreeKnown(cur *os.File, knownDmg *damage.Map, alt *os.File, altDmg *damage.Map, off, n int64, a, b []byte) (bool, int64, error) {
	if err := readFull(cur, a[:n], off); err != nil {
		return false, 0, err
	}
	if err := readFull(alt, b[:n], off); err != nil {
		return false, 0, err
	}
	bad := &damage.Map{}
	for _, r := range knownDmg.Overlaps(off, n) {
		bad.Add(r.Off-off, r.Len, damage.Tainted)
	}
	for _, r := range altDmg.Overlaps(off, n) {
		bad.Add(r.Off-off, r.Len, damage.Tainted)
	}
	var same int64
	p := int64(0)
	for _, r := range append(bad.Ranges(), damage.Range{Off: n}) {
		if r.Off > p {
			for i := p; i < r.Off; i++ {
				if a[i] != b[i] {
					return false, same, nil
				}
			}
			same += r.Off - p
		}
		p = max(p, r.End())
	}
	return true, same, nil
}

// redo is the outcome of the second passes.
type redo struct {
	res     *extract.Result
	dir     string
	donors  []string // the older backups whose bytes were used
	donated int64
	filled  map[string]*damage.Map // device name -> ranges from another night
	passes  int
	log     *extract.ChangeLog // the pass's changes to the images written in place
	undone  bool               // they were undone (a later pass ran)
	// skipped, changed: bytes an in-place pass did not write again, and
	// bytes it changed
	skipped, changed int64
	// where it started (extract.Result.ResumedAt; 0: at the start)
	resumedAt, resumedInput int64
}

// redoNewest decodes the newest backup again with the older nights as
// donors, at most one pass per older night (up to maxRedoPasses), until
// one is verified by the stream's checksum. It returns nil when no pass
// could be made or none improves on the first.
//
// A pass writes into the first pass's images in place (extract.Overlay):
// the clusters read from the output both passes share (before the first
// pass's first damaged stream byte) are not written again, the others
// only where they differ, each change logged, so that a pass not kept is
// undone. The images are the same as a pass into fresh ones would write.
func redoNewest(path string, newest *extract.Result, disksDir, work string, olds []*extract.Result, distrust []damage.Range, opt Options) (*redo, error) {
	if newest.Map == nil || newest.Map.Full || len(olds) == 0 || newest.Intact() {
		return nil, nil
	}
	if newest.Report.Archives[0].Compression != string(codec.Zstd) {
		return nil, nil
	}
	donor, err := newNightDonor(newest, disksDir, olds)
	if err != nil {
		return nil, err
	}
	defer donor.close()
	inPlace := inPlaceRedo && newest.Written != nil
	if inPlace {
		// the images change during a pass: what the donor compares with
		// the newest night's bytes is compared before
		// (when the answers do not all fit in the agreement cache, the
		// passes go into fresh images instead)
		fits, err := donor.agreeAll()
		if err != nil {
			return nil, err
		}
		inPlace, donor.frozen = fits, fits
	}
	var best *redo
	defer func() {
		if best != nil && best.log != nil {
			best.log.Close()
		}
	}()
	passes := min(donor.gens(), maxRedoPasses)
	for k := 0; k < passes; k++ {
		donor.first = k
		clear(donor.used)
		dir := filepath.Join(work, fmt.Sprintf("redo%d", k))
		opt.Progress.Phase("decode again with older nights "+filepath.Base(path), 0)
		x := extract.Options{Force: true, Progress: opt.Progress.Set, Context: opt.Context, Donor: donor, Map: true, Distrust: distrust}
		var log *extract.ChangeLog
		if inPlace {
			if log, err = extract.NewChangeLog(filepath.Join(work, fmt.Sprintf("redo%d.log", k))); err != nil {
				return nil, err
			}
			x.Overlay = &extract.Overlay{Images: map[string]string{}, Written: newest.Written, From: firstDamaged(newest.Map), Log: log}
			if resumeRedo {
				x.Resume = newest.Resume
			}
			for _, d := range newest.Report.Devices {
				x.Overlay.Images[d.Name] = filepath.Join(disksDir, d.Image)
			}
		}
		res, err := extract.Extract(path, dir, x)
		if err == nil && donor.err != nil {
			err = donor.err
		}
		if err != nil {
			if log != nil {
				uerr := log.Undo()
				log.Close()
				if uerr == nil && errors.Is(err, extract.ErrOverlayWrites) {
					// too many writes to compare: this pass again, into
					// fresh images
					os.RemoveAll(dir)
					inPlace, donor.frozen = false, false
					k--
					continue
				}
			}
			return nil, err
		}
		r := &redo{res: res, dir: dir, passes: k + 1, filled: map[string]*damage.Map{}, log: log}
		if res.ResumedAt > 0 {
			r.resumedAt, r.resumedInput = res.ResumedAt, x.Resume.Input()
		}
		if log != nil {
			_, r.changed = log.Changes()
			r.skipped = x.Overlay.Skipped
		}
		for a, n := range donor.used {
			r.donors = append(r.donors, a)
			r.donated += n
		}
		if len(r.donors) > 1 && r.donors[0] > r.donors[1] {
			r.donors[0], r.donors[1] = r.donors[1], r.donors[0]
		}
		if r.donated == 0 {
			if err := r.drop(); err != nil {
				return nil, err
			}
			break
		}
		if res.Verified {
			if best != nil {
				if err := best.drop(); err != nil {
					return nil, err
				}
				best = nil
			}
			if log != nil {
				log.Close() // its changes stay
				r.log = nil
			}
			return r, nil
		}
		r.mapFilled()
		if best == nil && r.notWorse(newest) {
			best = r
			if k+1 < passes && log != nil {
				// the next pass starts from the first pass's images; this
				// one is done again if it stays the best
				if err := log.Undo(); err != nil {
					return nil, err
				}
				r.undone = true
			}
		} else if err := r.drop(); err != nil {
			return nil, err
		}
	}
	if best != nil && best.undone {
		if err := best.log.Redo(); err != nil {
			return nil, err
		}
	}
	return best, nil
}

// inPlaceRedo lets a second pass write into the first pass's images
// (tests turn it off to compare with passes into fresh images).
var inPlaceRedo = true

// resumeRedo lets a second pass start at the first pass's Resume, the
// extent before the first damaged block (tests turn it off to compare
// with passes from the stream's start).
var resumeRedo = true

// firstDamaged returns the stream offset of a read's first damage: the
// output before it is the same in a second pass.
func firstDamaged(m *extract.StreamMap) int64 {
	return max(m.First(), 0)
}

// drop removes a pass not kept: its directory, and its changes to the
// images.
func (r *redo) drop() error {
	os.RemoveAll(r.dir)
	if r.log == nil {
		return nil
	}
	var err error
	if !r.undone {
		err = r.log.Undo()
	}
	if e := r.log.Close(); err == nil {
		err = e
	}
	r.log = nil
	return err
}

// agreeAll compares, for every placed block's cluster and every older
// night, the older night with what the newest knows (the cache agrees
// answers from). It reports false, having stopped, when the answers do not
// all fit in the cache (a pass that may not compare later cannot be made).
func (d *nightDonor) agreeAll() (fits bool, err error) {
	fits = true
	d.m.Placed(func(blk extract.PlacedBlock) {
		dd := d.devs[blk.Dev]
		if err != nil || !fits || dd == nil || blk.DevOff >= dd.size {
			return
		}
		for i := range dd.gens {
			key := [2]int64{int64(i), blk.DevOff / clusterSize}
			if _, seen := dd.agree.get(key); seen {
				continue
			}
			if len(dd.agree.m) >= maxAgree {
				fits = false
				return
			}
			if _, _, err = d.agrees(dd, i, key[1]); err != nil {
				return
			}
		}
	})
	return fits && err == nil, err
}

// notWorse reports whether the second pass leaves no more bytes damaged
// (apart from those from another night) than the first, on every device.
func (r *redo) notWorse(first *extract.Result) bool {
	for _, d := range r.res.Report.Devices {
		for _, f := range first.Report.Devices {
			if f.Name != d.Name {
				continue
			}
			bad := d.Damage.Total(damage.Tainted)
			if fm := r.filled[d.Name]; fm != nil {
				bad -= fm.Total(damage.Tainted)
			}
			if bad > f.Damage.Total(damage.Tainted) {
				return false
			}
		}
	}
	return true
}

// mapFilled finds, per device, the bytes from another night: sectors whose
// damaged bytes all lie in Donor spans.
func (r *redo) mapFilled() {
	m := r.res.Map
	names := map[uint8]string{}
	for _, d := range r.res.Report.Devices {
		names[uint8(d.ID)] = d.Name
	}
	donor, other := map[string]*damage.Map{}, map[string]*damage.Map{}
	for _, sp := range m.Spans {
		tgt := other
		if sp.Donor && !sp.Resync {
			tgt = donor
		}
		for o := sp.Off; o < sp.End(); {
			blk, ok := m.Block(o)
			if !ok {
				if n := m.Next(o); n > o {
					o = n
				} else {
					o = sp.End()
				}
				continue
			}
			hi := min(blk.Off+vma.BlockSize, sp.End())
			name := names[blk.Dev]
			if tgt[name] == nil {
				tgt[name] = &damage.Map{}
			}
			lo := blk.DevOff + (o - blk.Off)
			// whole sectors, as the device damage is
			a, b := lo&^511, (lo+(hi-o)+511)&^511
			tgt[name].Add(a, b-a, damage.Tainted)
			o = hi
		}
	}
	for _, d := range r.res.Report.Devices {
		dm := donor[d.Name]
		if dm == nil {
			continue
		}
		f := &damage.Map{}
		for _, rg := range dm.Ranges() {
			// only where the device damage is tainted (not lost) and no
			// other damaged byte shares the sector
			for _, x := range d.Damage.Overlaps(rg.Off, rg.Len) {
				if x.State == damage.Tainted {
					f.Add(x.Off, x.Len, damage.Tainted)
				}
			}
		}
		if om := other[d.Name]; om != nil {
			for _, rg := range om.Ranges() {
				f.Clear(rg.Off, rg.Len)
			}
		}
		if !f.Empty() {
			r.filled[d.Name] = f
		}
	}
}

// donorNames joins the donors for a report line.
func donorNames(ds []string) string {
	var s []string
	for _, d := range ds {
		s = append(s, filepath.Base(d))
	}
	return strings.Join(s, ", ")
}

// applyRedo puts a second pass's images in place of the first's in
// disksDir and its account into the report.
func applyRedo(rep *Report, r *redo, disksDir string) error {
	for i := range rep.Devices {
		d := &rep.Devices[i]
		for _, nd := range r.res.Report.Devices {
			if nd.Name != d.Name {
				continue
			}
			// (an image written in place is there already)
			if p := filepath.Join(disksDir, d.Image); r.res.Images[nd.Name] != p {
				if err := os.Rename(r.res.Images[nd.Name], p); err != nil {
					return err
				}
			}
			d.Damage, d.Clusters = nd.Damage, nd.Clusters
			if f := r.filled[d.Name]; f != nil {
				for _, rg := range f.Ranges() {
					d.Sources = appendSource(d.Sources, report.Source{Offset: rg.Off, Length: rg.Len, Archive: strings.Join(r.donors, ", "), Kind: report.Donor})
				}
			}
		}
	}
	a := &rep.Archives[0]
	a.Redecode = &report.Redecode{Donors: r.donors, DonatedBytes: r.donated, Passes: r.passes, Verified: r.res.Verified,
		Checksum: r.res.Report.Archives[0].Checksum, ResumedAt: r.resumedAt, ResumedInput: r.resumedInput}
	if r.res.Verified {
		a.Redecode.Note = fmt.Sprintf("decoded again with the lost bytes taken from %s: the archive's own checksum matches, every disk is the original bit for bit", donorNames(r.donors))
	} else {
		a.Redecode.Note = fmt.Sprintf("decoded again with the lost bytes taken from %s: the checksum does not match, so what depends on them is another night's content (listed as damaged, files mixed)", donorNames(r.donors))
	}
	return nil
}
