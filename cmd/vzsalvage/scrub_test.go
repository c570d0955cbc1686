package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vzsalvage/vzsalvage/protect"
)

// scrubDir makes a dump directory of six protected archives (copies of one
// under six guests' names), one of them damaged, and a sidecar whose
// archive was pruned.
func scrubDir(t *testing.T) (dir string, names []string) {
	t.Helper()
	dir = t.TempDir()
	arc := smallArchive(t, t.TempDir())
	if code, _, errs := vz("protect", "-q", arc); code != 0 {
		t.Fatalf("protect: %s", errs)
	}
	b, _ := os.ReadFile(arc)
	sc, _ := os.ReadFile(arc + ".vzsalvage")
	for id := 100; id < 106; id++ {
		p := filepath.Join(dir, fmt.Sprintf("vzdump-qemu-%d-2025_12_15-03_00_03.vma.zst", id))
		data := b
		if id == 103 {
			data = append([]byte(nil), b...)
			data[len(data)/3] ^= 1
		}
		os.WriteFile(p, data, 0o644)
		os.WriteFile(p+".vzsalvage", sc, 0o644)
		names = append(names, p)
	}
	os.WriteFile(filepath.Join(dir, "vzdump-qemu-99-2025_12_01-03_00_03.vma.zst.vzsalvage"), sc, 0o644)
	return dir, names
}

func TestScrubResumesAndSlices(t *testing.T) {
	dir, names := scrubDir(t)
	state := filepath.Join(t.TempDir(), "scrub.state")
	metrics := filepath.Join(t.TempDir(), "vzsalvage.prom")
	// interrupted after three archives
	code, out, errs := vz("scrub", "-q", "--state", state, "--limit", "3", dir)
	if code == 2 || strings.Count(out, ": ok")+strings.Count(out, ": repairable") != 3 || !strings.Contains(out, "stopped after 3") {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = vz("scrub", "-q", "--state", state, "--metrics", metrics, dir)
	if code != 1 || !strings.Contains(out, "resuming the scrub") || strings.Count(out, ".vma.zst: ") != 3 {
		t.Fatalf("resumed run: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "vzdump-qemu-99-2025_12_01-03_00_03.vma.zst.vzsalvage: sidecar without archive") {
		t.Errorf("orphan not listed:\n%s", out)
	}
	var st protect.ScrubState
	b, _ := os.ReadFile(state)
	json.Unmarshal(b, &st)
	if len(st.Done) != 6 || st.Finished == "" || st.Done[names[3]].Result != protect.ScrubRepairable {
		t.Fatalf("state: %d done, finished %q, %s: %+v", len(st.Done), st.Finished, names[3], st.Done[names[3]])
	}
	m, _ := os.ReadFile(metrics)
	for _, want := range []string{`vzsalvage_scrub_archives{result="ok"} 5`, `vzsalvage_scrub_archives{result="repairable"} 1`,
		`vzsalvage_archive_intact{archive="vzdump-qemu-103-2025_12_15-03_00_03.vma.zst",vmid="103",result="repairable"} 0`,
		"vzsalvage_scrub_orphan_sidecars 1"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	// a finished run starts again
	if code, out, _ = vz("scrub", "-q", "--state", state, dir); strings.Contains(out, "resuming") || strings.Count(out, ".vma.zst: ") != 6 {
		t.Fatalf("new cycle: exit %d\n%s", code, out)
	}
	// three slices check every archive exactly once
	seen := map[string]int{}
	for n := 1; n <= 3; n++ {
		_, out, _ := vz("scrub", "-q", "--json", "--subset", fmt.Sprintf("%d/3", n), dir)
		var checks []protect.Check
		if err := json.Unmarshal([]byte(out), &checks); err != nil {
			t.Fatalf("subset %d/3: %v\n%s", n, err, out)
		}
		for _, c := range checks {
			seen[c.Archive]++
		}
	}
	for _, p := range names {
		if seen[p] != 1 {
			t.Errorf("%s checked %d times over the three slices", p, seen[p])
		}
	}
	// --prune-orphans removes the orphan
	vz("scrub", "-q", "--prune-orphans", "--subset", "1/1000", dir)
	if _, err := os.Stat(filepath.Join(dir, "vzdump-qemu-99-2025_12_01-03_00_03.vma.zst.vzsalvage")); err == nil {
		t.Error("orphan sidecar not removed")
	}
}

// TestScrubSIGTERMResumesWithinTheArchive sends SIGTERM to scrubs of one
// large archive damaged before and after its midpoint: an interrupted one
// leaves in its state how far it got, and the next run goes on from there
// with a result that lists the damage of the whole archive.
func TestScrubSIGTERMResumesWithinTheArchive(t *testing.T) {
	dir := t.TempDir()
	arc := filepath.Join(dir, "vzdump-qemu-100-2025_12_15-03_00_03.vma")
	bigVMA(t, arc, 96)
	if code, _, errs := vz("protect", "-q", arc); code != 0 {
		t.Fatalf("protect: %s", errs)
	}
	b, _ := os.ReadFile(arc)
	b[len(b)/4] ^= 1
	b[len(b)*3/4] ^= 1
	os.WriteFile(arc, b, 0o644)
	interrupted := 0
	for _, delay := range []time.Duration{40 * time.Millisecond, 120 * time.Millisecond, 300 * time.Millisecond} {
		state := filepath.Join(t.TempDir(), "scrub.state")
		code, errs := sigterm(t, delay, "scrub", "-q", "--state", state, dir)
		var st protect.ScrubState
		sb, _ := os.ReadFile(state)
		json.Unmarshal(sb, &st)
		switch {
		case code == 1:
			t.Logf("SIGTERM after %v: finished first", delay)
			continue
		case code == -1:
			t.Logf("SIGTERM after %v: killed before it began", delay)
			continue
		case code == 2 && st.Partial != nil && st.Partial.Offset == 0 && strings.Contains(errs, "goes on from there"):
			t.Logf("SIGTERM after %v: stopped before its first block", delay)
			continue
		case code != 2 || st.Partial == nil || st.Partial.Offset < 0 || !strings.Contains(errs, "goes on from there"):
			t.Errorf("SIGTERM after %v: exit %d, state %s, stderr %q", delay, code, sb, errs)
			continue
		}
		interrupted++
		code, out, errs := vz("scrub", "-q", "--json", "--state", state, dir)
		var checks []protect.Check
		json.Unmarshal([]byte(out), &checks)
		if code != 1 || len(checks) != 1 || checks[0].ResumedAt != st.Partial.Offset || checks[0].Result != protect.ScrubRepairable ||
			checks[0].Damaged != 2*4096 {
			t.Errorf("SIGTERM after %v at byte %d: resumed run exit %d %s%s", delay, st.Partial.Offset, code, out, errs)
		}
		t.Logf("SIGTERM after %v: stopped at byte %d of %d; the resumed run found %s", delay, st.Partial.Offset, len(b), checks[0].Detail)
	}
	if interrupted == 0 {
		t.Log("no scrub was caught reading (too fast a machine)")
	}
}
