package ctar

import (
	"path"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Member is one entry of a tar archive, as its headers describe it. It
// is kept small (an archive may hold millions): what most members lack
// (a link target, device numbers, names of owners, xattrs and ACLs, a
// sparse map, damage, problems) hangs off it only when present, and its
// content extent is implied when it is the one run of bytes after its
// header.
type Member struct {
	// Name is the member's path as stored ("./etc/hostname").
	Name      string
	Size      int64 // the file's size (for a sparse file, its real size)
	HeaderOff int64 // stream offset of its first header (pax or long name)
	HeaderEnd int64 // stream offset just past its header block
	UID, GID  int64
	mtime     stamp
	atime     stamp // unset if the archive has none
	ctime     stamp
	Mode      uint32 // permission bits with setuid, setgid, sticky
	// Type is the header's type flag (TypeReg, TypeDir, TypeSymlink, ...).
	Type   byte
	Sparse bool
	// Resynced: the member was found by searching after damage.
	Resynced bool
	// HeaderTainted: some of its headers lie in tainted bytes (decoded,
	// but copied from damaged data): they passed every check, but their
	// fields may be wrong. Confirmed: the next header starts where this
	// one's size says, so at least its size (where its content lies) is
	// right.
	HeaderTainted bool
	Confirmed     bool
	// Config: one of vzdump's config files stored first in the archive
	// (./etc/vzdump/pct.conf, pct.fw), not part of the guest's tree.
	Config bool
	// verified: a protect record proved its headers and content right
	// (ApplyRecord).
	verified bool
	x        *memberExtra
}

// memberExtra holds what most members lack.
type memberExtra struct {
	link               string
	devMajor, devMinor int64
	uname, gname       string
	xattrs             map[string][]byte
	acls               map[string]string
	data               []fs.Extent // set when not the one run after the header
	lost               []fs.Extent
	problems           []string
}

// stamp is a time as a tar header gives it, in 16 bytes.
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

func (m *Member) ext() *memberExtra {
	if m.x == nil {
		m.x = &memberExtra{}
	}
	return m.x
}

// Mtime, Atime and Ctime return the member's times (zero when the archive
// has none).
func (m *Member) Mtime() time.Time { return m.mtime.time() }
func (m *Member) Atime() time.Time { return m.atime.time() }
func (m *Member) Ctime() time.Time { return m.ctime.time() }

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
	if m.x == nil {
		return "", ""
	}
	return m.x.uname, m.x.gname
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
