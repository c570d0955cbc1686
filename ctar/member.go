package ctar

import (
	"path"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Member is one entry of a tar archive, as its headers describe it. It
// is kept small (an archive may hold millions; Scan allocates members in
// chunks and their names in a shared arena): what most members lack (a
// link target, device numbers, xattrs and ACLs, a sparse map, damage,
// problems, an ID beyond 32 bits, a time beyond 2242) hangs off it only
// when present, owner names are shared by the members that have the same,
// and its content extent is implied when it is the one run of bytes after
// its header.
type Member struct {
	// Name is the member's path as stored ("./etc/hostname").
	Name      string
	Size      int64         // the file's size (for a sparse file, its real size)
	HeaderOff int64         // stream offset of its first header (pax or long name)
	HeaderEnd int64         // stream offset just past its header block
	times     [3]packedTime // mtime, atime, ctime
	x         *memberExtra
	own       *owners // nil: the archive names no owner (--numeric-owner)
	// UID and GID are the owner's IDs as the kernel takes them (32 bits;
	// IDs gives a larger value as stored).
	UID, GID uint32
	Mode     uint32 // permission bits with setuid, setgid, sticky
	// Type is the header's type flag (TypeReg, TypeDir, TypeSymlink, ...).
	Type  byte
	flags memberFlags
	// Sparse: the file has holes (a sparse map).
	Sparse bool
	// Config: one of vzdump's config files stored first in the archive
	// (./etc/vzdump/pct.conf, pct.fw), not part of the guest's tree.
	Config bool
}

// memberFlags are a member's flags (Member.Resynced, HeaderTainted,
// Confirmed, and verified).
type memberFlags uint8

const (
	flagResynced memberFlags = 1 << iota
	flagHeaderTainted
	flagConfirmed
	// flagVerified: a protect record proved its headers and content right
	// (ApplyRecord).
	flagVerified
)

func (m *Member) set(f memberFlags, on bool) {
	if on {
		m.flags |= f
	} else {
		m.flags &^= f
	}
}

// Resynced reports whether the member was found by searching after
// damage.
func (m *Member) Resynced() bool { return m.flags&flagResynced != 0 }

// HeaderTainted reports whether some of its headers lie in tainted bytes
// (decoded, but copied from damaged data): they passed every check, but
// their fields may be wrong. Confirmed reports whether the next header
// starts where this one's size says, so that at least its size (where its
// content lies) is right.
func (m *Member) HeaderTainted() bool { return m.flags&flagHeaderTainted != 0 }
func (m *Member) Confirmed() bool     { return m.flags&flagConfirmed != 0 }

// memberExtra holds what most members lack.
type memberExtra struct {
	link               string
	devMajor, devMinor int64
	ids                *[2]int64 // UID and GID when one does not fit 32 bits
	wide               *[3]stamp // times packedTime cannot hold
	xattrs             map[string][]byte
	acls               map[string]string
	data               []fs.Extent // set when not the one run after the header
	lost               []fs.Extent
	problems           []string
}

// owners are the names of a member's owner and group; Scan shares one
// value among the members that have the same.
type owners struct{ uname, gname string }

// stamp is a time as a tar header gives it.
type stamp struct {
	sec  int64
	nsec int32
	set  bool
}

func (s stamp) time() time.Time {
	if !s.set {
		return time.Time{}
	}
	return time.Unix(s.sec, int64(s.nsec))
}

// unix returns the stamp of sec and nsec; an unset one when sec is beyond
// any real time.
func unix(sec, nsec int64) stamp {
	if sec < -1<<40 || sec > 1<<40 {
		return stamp{}
	}
	return stamp{sec: sec, nsec: int32(nsec), set: true}
}

// packedTime is a stamp in 8 bytes: the seconds (34 bits, signed: the
// years 1698 to 2242) above the nanoseconds plus one (30 bits). 0 is an
// unset stamp; timeWide marks one held in memberExtra.wide.
type packedTime uint64

const (
	nsecBits = 30
	nsecMask = 1<<nsecBits - 1
	timeWide = packedTime(nsecMask) // nanoseconds+1 of 2^30-1: beyond any
)

// pack returns s packed, or false if it does not fit.
func pack(s stamp) (packedTime, bool) {
	switch {
	case !s.set:
		return 0, true
	case s.sec < -1<<33 || s.sec >= 1<<33 || s.nsec < 0 || s.nsec >= 1e9:
		return 0, false
	}
	return packedTime(uint64(s.sec)<<nsecBits | uint64(s.nsec+1)), true
}

// time returns the member's time k (0 mtime, 1 atime, 2 ctime).
func (m *Member) time(k int) stamp {
	p := m.times[k]
	switch {
	case p == 0:
		return stamp{}
	case p&nsecMask == nsecMask:
		return m.x.wide[k]
	}
	return stamp{sec: int64(p) >> nsecBits, nsec: int32(p&nsecMask) - 1, set: true}
}

// setTime sets the member's time k (0 mtime, 1 atime, 2 ctime).
func (m *Member) setTime(k int, s stamp) {
	if p, ok := pack(s); ok {
		m.times[k] = p
		return
	}
	x := m.ext()
	if x.wide == nil {
		x.wide = new([3]stamp)
	}
	x.wide[k], m.times[k] = s, timeWide
}

// setIDs sets the owner's IDs (>= 0).
func (m *Member) setIDs(uid, gid int64) {
	m.UID, m.GID = uint32(uid), uint32(gid)
	if uid > 1<<32-1 || gid > 1<<32-1 {
		m.ext().ids = &[2]int64{uid, gid}
	} else if m.x != nil {
		m.x.ids = nil
	}
}

// IDs returns the owner's IDs as stored (UID and GID hold their low 32
// bits).
func (m *Member) IDs() (uid, gid int64) {
	if m.x != nil && m.x.ids != nil {
		return m.x.ids[0], m.x.ids[1]
	}
	return int64(m.UID), int64(m.GID)
}

func (m *Member) ext() *memberExtra {
	if m.x == nil {
		m.x = &memberExtra{}
	}
	return m.x
}

// Mtime, Atime and Ctime return the member's times (zero when the archive
// has none).
func (m *Member) Mtime() time.Time { return m.time(0).time() }
func (m *Member) Atime() time.Time { return m.time(1).time() }
func (m *Member) Ctime() time.Time { return m.time(2).time() }

// Link returns a hard link's or symlink's target.
func (m *Member) Link() string {
	if m.x == nil {
		return ""
	}
	return m.x.link
}

// Dev returns a device node's major and minor numbers.
func (m *Member) Dev() (major, minor int64) {
	if m.x == nil {
		return 0, 0
	}
	return m.x.devMajor, m.x.devMinor
}

// Owners returns the names of its owner and group, if the archive has
// them (vzdump's --numeric-owner leaves them out).
func (m *Member) Owners() (uname, gname string) {
	if m.own == nil {
		return "", ""
	}
	return m.own.uname, m.own.gname
}

// Xattrs returns its SCHILY.xattr.* records; ACLs its SCHILY.acl.access
// and .default, as text.
func (m *Member) Xattrs() map[string][]byte {
	if m.x == nil {
		return nil
	}
	return m.x.xattrs
}

func (m *Member) ACLs() map[string]string {
	if m.x == nil {
		return nil
	}
	return m.x.acls
}

// Data maps the file's content to stream offsets (Logical: file offset,
// Physical: stream offset); what it leaves out is a hole.
func (m *Member) Data() []fs.Extent {
	if m.x != nil && m.x.data != nil {
		return m.x.data
	}
	if m.plain() {
		return []fs.Extent{{Logical: 0, Physical: m.HeaderEnd, Length: m.Size}}
	}
	return nil
}

// plain reports whether its content is the one run of Size bytes right
// after its header: all but sparse members and members cut by damage.
func (m *Member) plain() bool {
	return hasData(m.Type) && !m.Sparse && m.Size > 0 && (m.x == nil || m.x.data == nil && m.x.lost == nil)
}

// setData records the content's extents.
func (m *Member) setData(data []fs.Extent) {
	if len(data) == 1 && data[0].Logical == 0 && data[0].Physical == m.HeaderEnd && data[0].Length == m.Size && !m.Sparse &&
		(m.x == nil || m.x.lost == nil) {
		if m.x != nil {
			m.x.data = nil
		}
		return
	}
	if len(data) == 0 {
		// none: nothing implied either (no size, all holes, or all lost)
		if m.x != nil {
			m.x.data = nil
		}
		return
	}
	m.ext().data = data
}

// Lost lists file ranges whose bytes the stream no longer holds (cut by
// damage or by the end of the stream).
func (m *Member) Lost() []fs.Extent {
	if m.x == nil {
		return nil
	}
	return m.x.lost
}

// Problems lists problems with the member's own headers.
func (m *Member) Problems() []string {
	if m.x == nil {
		return nil
	}
	return m.x.problems
}

func (m *Member) addProblem(p ...string) {
	if len(p) > 0 {
		m.ext().problems = append(m.ext().problems, p...)
	}
}

// Index is what Scan found in a tar stream.
type Index struct {
	Members []*Member
	// Configs holds vzdump's config files (pct.conf, pct.fw) with their content.
	Configs []Config
	// Size is the length of the stream read.
	Size int64
	// Damage lists the stream's byte ranges not known to be right.
	Damage *damage.Map
	// Problems found, in stream offsets (layer "tar"), at most maxProblems;
	// ProblemCount counts them all.
	Problems     []damage.Problem
	ProblemCount int
	// Ended: the end-of-archive marker was read.
	Ended bool
	// Gaps lists the stretches of the stream where headers could not be
	// read: members stored there are lost.
	Gaps []Gap
	// Hashes holds, with Options.Hash, each member's hashes (parallel to
	// Members).
	Hashes []MemberHash
	// Fragments lists, in stream order, the runs of bytes found in Gaps
	// that the decoder vouches for: most often a member's content whose
	// headers were lost, unverified as a file (see Fragment).
	Fragments []Fragment
}

// MemberHash is the xxh64 of a member's header blocks as stored (its pax
// and GNU extended headers included) and of its content (the bytes of its
// data extents, in order; a sparse member's map and holes left out).
type MemberHash struct{ Header, Data uint64 }

// Gap is a stretch of the stream [Off, End) between members where headers
// were lost: after member After (an index into Members, -1 at the start)
// and before member After+1 (if any).
type Gap struct {
	After    int
	Off, End int64
}

// Config is a config file stored in the archive.
type Config struct {
	Name string
	Data []byte
}

// maxConfig bounds the config data kept in memory.
const maxConfig = 1 << 20

// Intact reports whether the scan found nothing wrong.
func (x *Index) Intact() bool { return x.ProblemCount == 0 && x.Damage.Empty() && x.Ended }

// cleanName turns a member name into a slash-separated path below the
// archive's root, without empty, "." or leading "/" elements. ok is false
// when a ".." element would climb: such members are not placed. The
// usual name ("./usr/bin/ls", "./etc/") gives a part of itself (no copy).
func cleanName(name string) (string, bool) {
	p := name
	for {
		if strings.HasPrefix(p, "/") {
			p = p[1:]
		} else if strings.HasPrefix(p, "./") {
			p = p[2:]
		} else {
			break
		}
	}
	p = strings.TrimSuffix(p, "/")
	if canonical(p) {
		return p, true
	}
	var out []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", false
		}
		out = append(out, c)
	}
	return path.Join(out...), true
}

// canonical reports whether p is a path of elements that are neither
// empty, "." nor "..".
func canonical(p string) bool {
	if p == "" {
		return true
	}
	for c := range strings.SplitSeq(p, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// configNames are the files vzdump stores first in a container backup.
var configNames = map[string]bool{"etc/vzdump/pct.conf": true, "etc/vzdump/pct.fw": true}
