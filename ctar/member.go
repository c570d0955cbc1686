package ctar

import (
	"path"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/fs"
)

// Member is one entry of a tar archive, as its headers describe it.
type Member struct {
	// Name is the member's path as stored ("./etc/hostname").
	Name string
	// Type is the header's type flag (TypeReg, TypeDir, TypeSymlink, ...).
	Type byte
	// Link is a hard link's or symlink's target.
	Link      string
	Mode      int64 // permission bits with setuid, setgid, sticky
	UID, GID  int64
	Size      int64 // the file's size (for a sparse file, its real size)
	Mtime     time.Time
	Atime     time.Time // zero if the archive has none
	Ctime     time.Time
	DevMajor  int64
	DevMinor  int64
	Uname     string
	Gname     string
	Xattrs    map[string][]byte // SCHILY.xattr.*, and the ACLs as system.posix_acl_*
	ACLs      map[string]string // SCHILY.acl.access / .default, as text
	Sparse    bool
	HeaderOff int64 // stream offset of its first header (pax or long name)
	HeaderEnd int64 // stream offset just past its header block
	// Data maps the file's content to stream offsets (Logical: file
	// offset, Physical: stream offset); what it leaves out is a hole.
	Data []fs.Extent
	// Lost lists file ranges whose bytes the stream no longer holds (cut
	// by damage or by the end of the stream).
	Lost []fs.Extent
	// Resynced: the member was found by searching after damage.
	Resynced bool
	// HeaderTainted: some of its headers lie in tainted bytes (decoded,
	// but copied from damaged data): they passed every check, but their
	// fields may be wrong. Confirmed: the next header starts where this
	// one's size says, so at least its size (where its content lies) is
	// right.
	HeaderTainted bool
	Confirmed     bool
	// Problems with the member's own headers.
	Problems []string
	// Config: one of vzdump's config files stored first in the archive
	// (./etc/vzdump/pct.conf, pct.fw), not part of the guest's tree.
	Config bool
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
}

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
// when a ".." element would climb: such members are not placed.
func cleanName(name string) (string, bool) {
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

// configNames are the files vzdump stores first in a container backup.
var configNames = map[string]bool{"etc/vzdump/pct.conf": true, "etc/vzdump/pct.fw": true}
