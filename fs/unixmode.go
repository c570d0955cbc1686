package fs

import iofs "io/fs"

// UnixMode converts a Linux st_mode (type bits, permissions, setuid,
// setgid, sticky) to an io/fs FileMode. Unknown type bits give
// ModeIrregular.
func UnixMode(m uint32) iofs.FileMode {
	mode := iofs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= iofs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= iofs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= iofs.ModeSticky
	}
	switch m & 0o170000 {
	case 0o100000:
	case 0o040000:
		mode |= iofs.ModeDir
	case 0o120000:
		mode |= iofs.ModeSymlink
	case 0o020000:
		mode |= iofs.ModeDevice | iofs.ModeCharDevice
	case 0o060000:
		mode |= iofs.ModeDevice
	case 0o010000:
		mode |= iofs.ModeNamedPipe
	case 0o140000:
		mode |= iofs.ModeSocket
	default:
		mode |= iofs.ModeIrregular
	}
	return mode
}

// direntTypes are the file types of a Linux directory entry (ext2-4's and
// XFS's ftype field) as io/fs type bits.
var direntTypes = [8]iofs.FileMode{
	1: 0,
	2: iofs.ModeDir,
	3: iofs.ModeDevice | iofs.ModeCharDevice,
	4: iofs.ModeDevice,
	5: iofs.ModeNamedPipe,
	6: iofs.ModeSocket,
	7: iofs.ModeSymlink,
}

// DirentType converts the file type of a Linux directory entry (1 regular
// file to 7 symlink) to io/fs type bits; ok is false for 0 (unknown) and
// for values past 7.
func DirentType(ft uint8) (mode iofs.FileMode, ok bool) {
	if ft < 1 || ft > 7 {
		return 0, false
	}
	return direntTypes[ft], true
}

// UnixEntry is a directory entry as ext2-4 and XFS hold it.
type UnixEntry struct {
	Name     string
	Node     Node
	FileType uint8 // the entry's file type (DirentType), 0 if none
	Where    Extent
	Suspect  string // why the entry cannot be trusted although it parsed
}

// UnixEntries turns a directory's entries into DirEntries. A name seen
// again for the same node is dropped; for another node both are kept and
// the clash noted in problems. The type comes from the entry's file type
// when fileTypes is set (the filesystem records them) and the value is
// valid, else from inodeType, else it is ModeIrregular.
func UnixEntries(ents []UnixEntry, fileTypes bool, inodeType func(Node) (iofs.FileMode, bool), problems *ProblemLog) []DirEntry {
	out := make([]DirEntry, 0, len(ents))
	seen := make(map[string]Node, len(ents))
	for _, e := range ents {
		if prev, ok := seen[e.Name]; ok {
			if prev == e.Node {
				continue
			}
			problems.Addf("name %q appears twice (inodes %d and %d)", e.Name, prev, e.Node)
		} else {
			seen[e.Name] = e.Node
		}
		d := DirEntry{Name: e.Name, Node: e.Node, Where: e.Where}
		if e.Suspect != "" {
			d.Problems = []string{e.Suspect}
		}
		var ok bool
		if fileTypes {
			d.Type, ok = DirentType(e.FileType)
		}
		if !ok {
			if d.Type, ok = inodeType(e.Node); !ok {
				d.Type = iofs.ModeIrregular
			}
		}
		out = append(out, d)
	}
	return out
}
