package ctar

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"
)

// TestPackedTime: every stamp a header can give comes back as set,
// packed when it fits, in memberExtra when not.
func TestPackedTime(t *testing.T) {
	for _, s := range []stamp{
		{}, {sec: 0, nsec: 0, set: true}, {sec: -1, nsec: 999_999_999, set: true}, {sec: 1764903600, nsec: 123456789, set: true},
		{sec: 1<<33 - 1, nsec: 999_999_999, set: true}, {sec: -1 << 33, set: true},
		{sec: 1 << 33, nsec: 5, set: true}, {sec: -1<<33 - 1, set: true}, {sec: 1 << 40, nsec: 1, set: true}, {sec: -1 << 40, set: true},
	} {
		var m Member
		for k := range 3 {
			m.setTime(k, s)
			if got := m.time(k); got != s {
				t.Errorf("time %d: set %+v, got %+v", k, s, got)
			}
		}
		_, fits := pack(s)
		if wide := m.x != nil && m.x.wide != nil; wide == fits {
			t.Errorf("%+v: fits %v, held wide %v", s, fits, wide)
		}
		m.setTime(1, stamp{})
		if m.time(1).set || m.time(0) != s {
			t.Errorf("%+v: unset atime: %+v %+v", s, m.time(1), m.time(0))
		}
	}
}

// TestMemberCompactFields: IDs beyond 32 bits, times beyond the packed
// range and owner names come back from a scan as stored; owner names are
// shared, not held per member.
func TestMemberCompactFields(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	far := time.Unix(1<<35, 7)
	hs := []*tar.Header{
		{Name: "./a", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1 << 33, Gid: 100000, Uname: "alice", Gname: "staff", ModTime: far, Format: tar.FormatPAX},
		{Name: "./b", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 100000, Gid: 1<<32 + 5, Uname: "alice", Gname: "staff",
			ModTime: time.Unix(1764903600, 5), AccessTime: time.Unix(-5, 9), ChangeTime: far, Format: tar.FormatPAX},
		{Name: "./c", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 7, Gid: 8, ModTime: time.Unix(1764903600, 0), Format: tar.FormatPAX},
	}
	for _, h := range hs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	x, err := Scan(&spanReader{Reader: bytes.NewReader(buf.Bytes())}, Options{})
	if err != nil || !x.Intact() || len(x.Members) != len(hs) {
		t.Fatalf("%d members, %v", len(x.Members), err)
	}
	for i, h := range hs {
		m := x.Members[i]
		uid, gid := m.IDs()
		u, g := m.Owners()
		if m.Name != h.Name || uid != int64(h.Uid) || gid != int64(h.Gid) || m.UID != uint32(h.Uid) || m.GID != uint32(h.Gid) ||
			u != h.Uname || g != h.Gname || !m.Mtime().Equal(h.ModTime) {
			t.Errorf("%s: %q %d %d (%d %d) %q %q %v", h.Name, m.Name, uid, gid, m.UID, m.GID, u, g, m.Mtime())
		}
		if !h.AccessTime.IsZero() && (!m.Atime().Equal(h.AccessTime) || !m.Ctime().Equal(h.ChangeTime)) {
			t.Errorf("%s: atime %v ctime %v", h.Name, m.Atime(), m.Ctime())
		}
	}
	if x.Members[0].own != x.Members[1].own || x.Members[2].own != nil {
		t.Errorf("owner names not shared")
	}
}
