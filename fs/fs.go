// Package fs defines the interface every guest filesystem reader of
// vzsalvage implements (fs/ext4, and later XFS, FAT, NTFS, btrfs), and the
// generic layer above it: path lookup, an io/fs.FS view, tree walking.
//
// Readers are node-based, like The Sleuth Kit's inode addressing: a Node is
// the filesystem's own file identity (an inode number for ext4). Everything
// path-shaped is built once, here, on top of that.
//
// Readers are read-only and resilient: a damaged object is reported on that
// object (an error from that call, a Problem in its Stat) and never fails its
// parent or its siblings; sizes and counts read from disk never size an
// allocation or a loop without a bound; cycles are detected.
package fs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"time"
)

// Node identifies a file within one filesystem (for ext4, the inode number).
type Node uint64

// FS is a read-only guest filesystem.
type FS interface {
	// Info describes the filesystem as a whole.
	Info() Info
	// Root returns the root directory's node.
	Root() Node
	// Stat returns a node's metadata. It never follows symlinks.
	Stat(n Node) (*Stat, error)
	// ReadDir returns a directory's entries, without "." and "..". On damage
	// it returns every entry it could read together with an error.
	ReadDir(n Node) ([]DirEntry, error)
	// Open returns a regular file's content.
	Open(n Node) (File, error)
	// ReadLink returns a symlink's target.
	ReadLink(n Node) (string, error)
	// Layout returns where a node's data and metadata lie on the volume.
	Layout(n Node) (*Layout, error)
	// Orphans returns valid files and directories that no directory reaches
	// (e2fsck would put them in lost+found as #INODE). It may be empty.
	Orphans() ([]Node, error)
}

// Info describes a filesystem.
type Info struct {
	Type      string // "ext4", "ext3", "ext2", "xfs", ...
	UUID      string
	Label     string
	BlockSize int
	// Size is the filesystem's size in bytes as its superblock says.
	Size int64
	// View names the view being read, where a filesystem offers several
	// (ext4: "replayed" journal or "on-disk").
	View string
	// Problems found while opening (a bad primary superblock, a journal that
	// could not be replayed, ...). Reading went on.
	Problems []string
}

// Stat is a node's metadata.
type Stat struct {
	Node  Node
	Mode  iofs.FileMode // type bits and permission, setuid, setgid, sticky
	Size  int64
	Nlink uint32
	UID   uint32
	GID   uint32
	Rdev  uint64 // device number for device nodes (Linux encoding)
	Atime time.Time
	Mtime time.Time
	Ctime time.Time
	Btime time.Time // zero when the filesystem does not record it
	// Generation tells apart files that had the same node number at
	// different times (ext4's i_generation); 0 when not recorded.
	Generation uint32
	// Xattrs holds extended attributes by full name ("user.foo",
	// "security.capability", "system.posix_acl_access").
	Xattrs map[string][]byte
	// Problems the reader found in this node's own metadata (a checksum
	// mismatch, an unreadable extent tree block, a size past the end of the
	// volume). A node with problems is damaged even where no damage map
	// says so.
	Problems []string
}

// DirEntry is one name in a directory.
type DirEntry struct {
	Name string
	Node Node
	Type iofs.FileMode // type bits only; the reader's best knowledge
	// Where is the volume byte range that holds this entry's record, or
	// Len 0 if not known: damage there makes the entry untrustworthy.
	Where Extent
	// Problems the reader found in the entry's own block (a checksum that
	// fails): the entry parsed, but its name or inode number may be wrong.
	Problems []string
	// Orphan marks an entry WithOrphans made for a file no directory
	// names (lost+found/#NODE): its name is unknown.
	Orphan bool
	// Named says, for an orphan WithOrphans put back under the name an
	// older copy of its directory gives it (a Namer), where that name was
	// found; "" for a name its directory holds.
	Named string
}

// File is a regular file's content. Reads past a hole return zeros; reads
// of data the reader could not locate return zeros and an error wrapping
// ErrDamaged after filling what it could.
type File interface {
	io.ReaderAt
	Size() int64
}

// Extent maps bytes of a file to the volume: file bytes [Logical,
// Logical+Length) are at volume bytes [Physical, Physical+Length). Physical
// is -1 for a hole (reads as zeros) and for unwritten (preallocated) extents.
//
// Stored, when not 0, says the extent is stored encoded (compressed: btrfs
// extents, NTFS compression units): its Length file bytes come from the
// Stored volume bytes at Physical, and damage to any of those makes all of
// them bad.
type Extent struct {
	Logical  int64
	Physical int64
	Length   int64
	Stored   int64
}

// Span returns the volume byte range [Physical, Physical+n) the extent's
// content depends on: Stored bytes for an encoded extent, else Length.
func (e Extent) Span() int64 {
	if e.Stored > 0 {
		return e.Stored
	}
	return e.Length
}

// Layout says which volume bytes a node depends on.
type Layout struct {
	// Data maps the file's content, in Logical order; holes may be listed
	// or simply left out.
	Data []Extent
	// Meta lists volume ranges (Logical unused) holding the metadata that
	// defines the node's content: its inode, extent tree or indirect blocks,
	// and for directories their directory blocks. Damage there makes the
	// whole content untrustworthy.
	Meta []Extent
	// Attr lists volume ranges holding metadata that does not locate the
	// content: external xattr blocks. Damage there leaves the content
	// intact.
	Attr []Extent
	// Lost lists file ranges (Logical, Length; Physical unused) whose
	// mapping could not be read (a damaged extent tree block): their
	// content is unknown and reads as zeros.
	Lost []Extent
	// Inline reports that the content is stored inside the metadata (ext4
	// inline data, fast symlinks): it is damaged when Meta is.
	Inline bool
}

// ErrDamaged is wrapped by errors that come from damaged on-disk structures.
var ErrDamaged = errors.New("damaged filesystem structure")

// ErrNotDir, ErrNotFile, ErrNotLink are returned by calls on the wrong kind of node.
var (
	ErrNotDir  = errors.New("not a directory")
	ErrNotFile = errors.New("not a regular file")
	ErrNotLink = errors.New("not a symlink")
)

// ReadVolume reads len(p) bytes at offset off of a volume of size bytes
// read through r, for readers whose on-disk pointers may point anywhere:
// bytes outside the volume read as zeros, and a short read returns an
// error wrapping ErrDamaged, prefixed with who ("ntfs").
func ReadVolume(r io.ReaderAt, size int64, p []byte, off int64, who string) error {
	if off < 0 || off >= size {
		clear(p)
		return fmt.Errorf("%s: offset %d outside the volume: %w", who, off, ErrDamaged)
	}
	n := len(p)
	if int64(n) > size-off {
		n = int(size - off)
	}
	got, err := r.ReadAt(p[:n], off)
	clear(p[got:])
	if got < len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%s: reading at %d: %v: %w", who, off, err, ErrDamaged)
	}
	return nil
}
