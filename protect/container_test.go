//go:build linux

package protect

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
	"github.com/vzsalvage/vzsalvage/extract"
	"github.com/vzsalvage/vzsalvage/internal/testimg"
	"github.com/vzsalvage/vzsalvage/internal/testutil"
	"github.com/vzsalvage/vzsalvage/payload"
)

// containerArchive writes a container tree and its backup made by GNU tar
// with vzdump's flags, compressed for ext.
func containerArchive(t *testing.T, ext string, seed int64) (arc, src string) {
	t.Helper()
	testutil.RequireTool(t, "tar")
	testutil.RequireTool(t, "setfacl")
	testutil.RequireTool(t, "setfattr")
	dir := t.TempDir()
	src = filepath.Join(dir, "root")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	testimg.ContainerTree(t, src, testimg.ContainerOptions{Files: 300, Seed: seed})
	return testimg.ContainerArchive(t, src, dir, ext, "2025_12_15-03_00_03"), src
}

// scanArchive returns the index of an archive's tar stream, with hashes.
func scanArchive(t *testing.T, path string) *ctar.Index {
	t.Helper()
	s, err := payload.Open(path, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dec, err := s.Decode()
	if err != nil {
		t.Fatal(err)
	}
	x, err := ctar.Scan(dec, ctar.Options{Hash: true})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestProtectContainer: a container backup's sidecar records every member;
// a byte changed in a file's content, which no check of a tar archive can
// see, is then named by file, and the parity puts the archive back.
func TestProtectContainer(t *testing.T) {
	arc, src := containerArchive(t, "", 31)
	want := fileSHA(t, arc)
	res := protectOK(t, arc, Options{})
	sc, err := OpenSidecar(res.Sidecar)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	x := scanArchive(t, arc)
	if h := sc.Header; h.Tar == nil || h.Tar.Members != int64(len(x.Members)) || len(h.VMA.Devices) != 0 {
		t.Fatalf("header %+v (%d members)", h, len(x.Members))
	}
	t.Logf("archive %d bytes, %d members, sidecar %d bytes", res.ArchiveSize, len(x.Members), res.SidecarSize)
	vres, err := extract.Verify(arc, extract.Options{Checker: NewChecker(sc)})
	if err != nil || !vres.Intact() || vres.Report.Archives[0].Sidecar == nil || !vres.Report.Archives[0].Sidecar.Used {
		t.Fatalf("clean, with its sidecar: %v %+v", err, vres.Report.Archives[0])
	}

	// a byte of one file's content
	var victim string
	var content []byte
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if victim == "" && err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); len(b) > 5000 && bytes.Count(b, b[:64]) == 1 {
				victim, content = p, b
			}
		}
		return nil
	})
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, content)
	if victim == "" || at < 0 {
		t.Fatal("no file to damage")
	}
	b[at+1000] ^= 0x20
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	blind, err := extract.Verify(arc, extract.Options{NoSidecar: true})
	if err != nil || !blind.Intact() || len(blind.Report.DamagedFiles) != 0 {
		t.Fatalf("without the sidecar the change is silent, but: %v %+v", err, blind.Report.Archives[0])
	}
	vres, err = extract.Verify(arc, extract.Options{Checker: NewChecker(sc)})
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(src, victim)
	a := vres.Report.Archives[0]
	if vres.Intact() || a.Sidecar.WrongMembers != 1 || len(vres.Report.DamagedFiles) != 1 || vres.Report.DamagedFiles[0].Path != "/"+rel {
		t.Fatalf("with the sidecar: %+v %+v", a, vres.Report.DamagedFiles)
	}
	rr, err := Repair(arc, RepairOptions{InPlace: true})
	if err != nil || !rr.Complete || fileSHA(t, arc) != want {
		t.Fatalf("repair: %v %+v", err, rr)
	}
}

// TestProtectContainerGarbage: after 64 KiB of garbage in a .tar.zst, the
// sidecar proves right members the decoder could only suspect, and every
// member judged intact is one of the original's, headers and content.
func TestProtectContainerGarbage(t *testing.T) {
	arc, _ := containerArchive(t, ".zst", 32)
	protectOK(t, arc, Options{})
	clean := scanArchive(t, arc)
	orig := map[ctar.MemberHash]bool{}
	for _, h := range clean.Hashes {
		orig[h] = true
	}
	b, err := os.ReadFile(arc)
	if err != nil {
		t.Fatal(err)
	}
	p := len(b) / 2
	rand.New(rand.NewSource(5)).Read(b[p : p+65536])
	if err := os.WriteFile(arc, b, 0o644); err != nil {
		t.Fatal(err)
	}
	blind, err := extract.Verify(arc, extract.Options{NoSidecar: true})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := Find(arc, "")
	if err != nil || sc == nil {
		t.Fatal(sc, err)
	}
	defer sc.Close()
	vres, err := extract.Verify(arc, extract.Options{Checker: NewChecker(sc)})
	if err != nil {
		t.Fatal(err)
	}
	x, s := vres.Tar, vres.Report.Archives[0].Sidecar
	intact := 0
	for i, m := range x.Members {
		if x.MemberDamage(m) == nil && len(m.Problems()) == 0 {
			intact++
			if !orig[x.Hashes[i]] {
				t.Errorf("%s judged intact but is not the original's", m.Name)
			}
		}
	}
	t.Logf("%d damaged files without the sidecar, %d with it; %d members intact; sidecar %+v",
		len(blind.Report.DamagedFiles), len(vres.Report.DamagedFiles), intact, s)
	if !s.Used || len(vres.Report.DamagedFiles) > len(blind.Report.DamagedFiles) || s.MissingMembers+int64(len(x.Members)) < int64(len(clean.Members)) {
		t.Errorf("sidecar %+v", s)
	}
}
