package ctar

import (
	"encoding/binary"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// POSIX ACL tags in the kernel's xattr form (system.posix_acl_access).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff
	aclVersion  = 2
)

// maxACLEntries bounds an ACL's entries.
const maxACLEntries = 1024

type aclEntry struct {
	tag  uint16
	perm uint16
	id   uint32
}

// aclXattr converts an ACL in the text form GNU tar stores
// (SCHILY.acl.access: "user::rw-\nuser:1000:r--\ngroup::r--\nmask::r--\nother::r--")
// into the kernel's xattr form. Named users and groups that are not
// numeric are looked up on this host, as tar -x does.
func aclXattr(text string) ([]byte, error) {
	var es []aclEntry
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' }) {
		if i := strings.IndexByte(f, '#'); i >= 0 {
			f = f[:i]
		}
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if len(es) >= maxACLEntries {
			return nil, fmt.Errorf("ACL: too many entries")
		}
		parts := strings.Split(f, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("ACL entry %q", f)
		}
		perm, err := aclPerm(parts[2])
		if err != nil {
			return nil, err
		}
		e := aclEntry{perm: perm, id: aclNoID}
		qual := parts[1]
		switch parts[0] {
		case "user", "u":
			e.tag = aclUserObj
			if qual != "" {
				e.tag = aclUser
				e.id, err = lookupID(qual, false)
			}
		case "group", "g":
			e.tag = aclGroupObj
			if qual != "" {
				e.tag = aclGroup
				e.id, err = lookupID(qual, true)
			}
		case "mask", "m":
			e.tag = aclMask
		case "other", "o":
			e.tag = aclOther
		default:
			return nil, fmt.Errorf("ACL entry %q", f)
		}
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	slices.SortStableFunc(es, func(a, b aclEntry) int {
		if a.tag != b.tag {
			return int(a.tag) - int(b.tag)
		}
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	out := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range es {
		out = binary.LittleEndian.AppendUint16(out, e.tag)
		out = binary.LittleEndian.AppendUint16(out, e.perm)
		out = binary.LittleEndian.AppendUint32(out, e.id)
	}
	return out, nil
}

func aclPerm(s string) (uint16, error) {
	if len(s) != 3 {
		return 0, fmt.Errorf("ACL permissions %q", s)
	}
	var p uint16
	for i := 0; i < 3; i++ {
		switch c := s[i]; {
		case c == "rwx"[i]:
			p |= 4 >> i
		case c != '-':
			return 0, fmt.Errorf("ACL permissions %q", s)
		}
	}
	return p, nil
}

// lookupID resolves a user or group named in an ACL: a number as is, a
// name through this host's user database (each name looked up once).
func lookupID(name string, group bool) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	key := fmt.Sprint(group, ":", name)
	idCache.Lock()
	defer idCache.Unlock()
	if r, ok := idCache.m[key]; ok {
		return r.id, r.err
	}
	id, err := lookupName(name, group)
	if len(idCache.m) < 10000 {
		idCache.m[key] = idResult{id, err}
	}
	return id, err
}

type idResult struct {
	id  uint32
	err error
}

var idCache = struct {
	sync.Mutex
	m map[string]idResult
}{m: map[string]idResult{}}

func lookupName(name string, group bool) (uint32, error) {
	var id string
	if group {
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, fmt.Errorf("ACL names group %q, unknown here", name)
		}
		id = g.Gid
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, fmt.Errorf("ACL names user %q, unknown here", name)
		}
		id = u.Uid
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, err
	}
	return uint32(n), nil
}
