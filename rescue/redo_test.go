package rescue

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/extract"
)

// redoBoth runs the second passes over newest twice from the same first
// pass: into fresh images, and in place into a copy of the first pass's
// images, and asserts the same outcome: verdict, donors, damage maps,
// ranges from another night, and every image byte for byte. It returns
// the in-place outcome.
func redoBoth(t *testing.T, newest string, olds []string, wantInPlace bool) *redo {
	t.Helper()
	base := t.TempDir()
	first, err := extract.Extract(newest, filepath.Join(base, "first"), extract.Options{Map: true, Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	var older []*extract.Result
	for i, o := range olds {
		res, err := extract.Extract(o, filepath.Join(base, "old", string(rune('a'+i))), extract.Options{})
		if err != nil {
			t.Fatal(err)
		}
		older = append(older, res)
	}
	run := func(name string, inPlace, resume bool) (*redo, map[string][]byte) {
		disks := filepath.Join(base, name, "disks")
		if err := os.MkdirAll(disks, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range first.Report.Devices {
			b, err := os.ReadFile(first.Images[d.Name])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(disks, d.Image), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		work := filepath.Join(base, name, "work")
		os.MkdirAll(work, 0o755)
		defer func(v bool) { inPlaceRedo = v }(inPlaceRedo)
		inPlaceRedo = inPlace
		defer func(v bool) { resumeRedo = v }(resumeRedo)
		resumeRedo = resume
		rd, err := redoNewest(newest, first, disks, work, older, nil, Options{Progress: noProgress{}})
		if err != nil {
			t.Fatal(err)
		}
		imgs := map[string][]byte{}
		for _, d := range first.Report.Devices {
			p := filepath.Join(disks, d.Image)
			if rd != nil {
				if q, ok := rd.res.Images[d.Name]; ok {
					p = q
				}
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			imgs[d.Name] = b
		}
		if ents, _ := os.ReadDir(work); rd == nil && len(ents) > 0 {
			t.Errorf("%s: %d entries left in the work directory", name, len(ents))
		}
		return rd, imgs
	}
	full, fullImgs := run("fresh", false, false)
	var in *redo
	for _, resume := range []bool{false, true} {
		name := "inplace"
		if resume {
			name = "resumed"
		}
		r, imgs := run(name, true, resume)
		if (full == nil) != (r == nil) {
			t.Fatalf("second pass kept: fresh %v, %s %v", full != nil, name, r != nil)
		}
		for dev, b := range fullImgs {
			if !bytes.Equal(b, imgs[dev]) {
				n := 0
				for i := range b {
					if b[i] != imgs[dev][i] {
						n++
					}
				}
				t.Errorf("%s, %s: the images differ in %d bytes", name, dev, n)
			}
		}
		if full == nil {
			return nil
		}
		same := func(what string, a, b any) {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Errorf("%s differ:\nfresh    %s\n%-8s %s", what, ja, name, jb)
			}
		}
		t.Logf("%s: passes %d, verified %v: %d bytes not written again, %d changed; started at stream offset %d, file offset %d (first damage at %d)",
			name, r.passes, r.res.Verified, r.skipped, r.changed, r.resumedAt, r.resumedInput, firstDamaged(first.Map))
		if wantInPlace && (r.skipped == 0 || r.changed == 0) {
			t.Errorf("the pass in place skipped %d bytes and changed %d", r.skipped, r.changed)
		}
		if resume && wantInPlace && (first.Resume == nil || r.resumedAt == 0) {
			t.Errorf("the pass did not resume (first pass's resume point %v)", first.Resume)
		}
		same("verdicts", []any{full.res.Verified, full.passes, full.donors, full.donated}, []any{r.res.Verified, r.passes, r.donors, r.donated})
		same("devices", full.res.Report.Devices, r.res.Report.Devices)
		same("filled", full.filled, r.filled)
		same("checksums", full.res.Report.Archives[0].Checksum, r.res.Report.Archives[0].Checksum)
		same("problems", full.res.Report.Archives[0].Problems, r.res.Report.Archives[0].Problems)
		in = r
	}
	return in
}

// TestRedoInPlace: a second pass written into the first pass's images in
// place (the clusters before the first damaged stream byte not written
// again, the others only where they differ, a pass not kept undone) gives
// the same images, damage and verdict as a second pass into fresh images,
// on archives made by the zstd CLI: one verified, one with a wrong donor
// (not verified), and one where the first pass prefers the wrong donor and
// the second pass, from undone images, is verified with the right one.
func TestRedoInPlace(t *testing.T) {
	ns := buildNights(t, 2, 300)
	// an older night whose every block of the root differs (wrong donor)
	wrong := ns.wrongNight(t, time.Date(2025, 12, 14, 3, 0, 3, 0, time.UTC))
	hit(t, ns.arcs[1], placeable(t, ns.arcs[1], []float64{0.5, 0.3, 0.7, 0.2, 0.6}, 9), 9)

	t.Run("verified", func(t *testing.T) {
		rd := redoBoth(t, ns.arcs[1], []string{ns.arcs[0]}, true)
		if rd == nil || !rd.res.Verified {
			t.Fatalf("not verified: %+v", rd)
		}
	})
	t.Run("agreements-over-the-cache", func(t *testing.T) {
		// more clusters to compare than the agreement cache holds: the
		// pass cannot freeze them all, so it is made into fresh images
		// (it failed with "not compared before the second pass")
		defer func(n int) { maxAgree = n }(maxAgree)
		maxAgree = 4
		rd := redoBoth(t, ns.arcs[1], []string{ns.arcs[0]}, false)
		if rd == nil || !rd.res.Verified {
			t.Fatalf("not verified: %+v", rd)
		}
		if rd.log != nil || rd.skipped != 0 {
			t.Errorf("written in place (%d bytes skipped) with the cache too small", rd.skipped)
		}
	})
	t.Run("wrong", func(t *testing.T) {
		rd := redoBoth(t, ns.arcs[1], []string{wrong}, true)
		if rd != nil && rd.res.Verified {
			t.Fatalf("a wrong donor verified")
		}
	})
	t.Run("wrong-then-right", func(t *testing.T) {
		rd := redoBoth(t, ns.arcs[1], []string{wrong, ns.arcs[0]}, true)
		if rd == nil || !rd.res.Verified {
			t.Fatalf("not verified: %+v", rd)
		}
		t.Logf("verified in pass %d", rd.passes)
	})
}

// TestRedoResumedFrames: a newest night in two zstd frames (the CLI run
// on each part of the VMA stream, concatenated, as multi-threaded tools
// may write it), hit just after the second frame starts: the pass resumes
// at an extent header in the first frame, from the checkpoint's window
// across the frames' boundary, and gives the same images, damage and
// verdict as passes from the start (the checkpoint at a frame's start was
// not kept before: the previous frame's held output had been hashed).
func TestRedoResumedFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two nights")
	}
	ns := buildNights(t, 2, 300)
	stream, err := exec.Command("zstd", "-q", "-d", "-c", ns.arcs[1]).Output()
	if err != nil {
		t.Fatal(err)
	}
	// the second frame starts 200 KB after an extent header: a hit early
	// in it resumes at that header, in the first frame
	hdr := bytes.Index(stream[len(stream)/2:], []byte("VMAE"))
	if hdr < 0 {
		t.Fatal("no extent header in the stream's second half")
	}
	half := len(stream)/2 + hdr + 200<<10
	var two []byte
	var second int
	for i, part := range [][]byte{stream[:half], stream[half:]} {
		cmd := exec.Command("zstd", "-q", "--threads=1", "-c")
		cmd.Stdin = bytes.NewReader(part)
		c, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			second = len(two)
		}
		two = append(two, c...)
	}
	if err := os.WriteFile(ns.arcs[1], two, 0o644); err != nil {
		t.Fatal(err)
	}
	var fracs []float64
	for _, d := range []int{100 << 10, 300 << 10, 600 << 10} {
		fracs = append(fracs, float64(second+d)/float64(len(two)))
	}
	hit(t, ns.arcs[1], placeable(t, ns.arcs[1], fracs, 5), 5)
	rd := redoBoth(t, ns.arcs[1], []string{ns.arcs[0]}, true)
	if rd == nil {
		t.Fatal("no second pass kept")
	}
	t.Logf("verified: %v", rd.res.Verified)
	if rd.resumedAt == 0 || int(rd.resumedAt) >= half {
		t.Errorf("resumed at %d, want in the first frame (the second starts at %d)", rd.resumedAt, half)
	}
}
