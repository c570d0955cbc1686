package protect

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/archive"
	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/report"
)

// Scrub results of one archive.
const (
	ScrubOK         = "ok"         // bit for bit what was protected
	ScrubRepairable = "repairable" // damaged; the parity rebuilds it
	ScrubDamaged    = "damaged"    // damaged beyond the parity
	ScrubNoSidecar  = "no-sidecar" // never protected
	ScrubError      = "error"      // could not be checked
)

// Check is the result of re-checking one archive against its sidecar.
type Check struct {
	Archive string `json:"archive"`
	Sidecar string `json:"sidecar,omitempty"`
	Result  string `json:"result"`
	Detail  string `json:"detail,omitempty"`
	// Damaged counts the archive's damaged bytes (whole chunks).
	Damaged int64 `json:"damaged_bytes,omitempty"`
	Bytes   int64 `json:"bytes"`
	// ResumedAt is the offset the check went on from (an interrupted one's).
	ResumedAt int64  `json:"resumed_at,omitempty"`
	Time      string `json:"time"`
	VMID      int    `json:"vmid,omitempty"`
}

// CheckArchive re-checks an archive against its sidecar: every chunk's
// hash and the SHA-256, no decompression. The result is also kept beside
// the sidecar (SIDECAR.check) for Status.
func CheckArchive(path, sidecarDir string, progress func(done, total int64)) Check {
	c, _ := Recheck(path, CheckOptions{SidecarDir: sidecarDir, Progress: progress})
	return c
}

// CheckOptions control Recheck.
type CheckOptions struct {
	SidecarDir string
	Progress   func(done, total int64)
	// Context, if set, stops the check when done (an interrupt).
	Context context.Context
	// Resume is where an earlier check of the archive stopped (nil, or a
	// point of a changed archive or sidecar: from the start).
	Resume *ScanPoint
	// Checkpoint, if set, receives the point a later Resume goes on from:
	// every CheckpointBytes (default 1 GiB) or CheckpointEvery (default
	// 30 s) and when the context ends.
	Checkpoint      func(*ScanPoint)
	CheckpointBytes int64
	CheckpointEvery time.Duration
}

// Recheck is CheckArchive with a context and resumable: stopped by its
// context, it returns context.Canceled after Checkpoint received the last
// point (the Check is then unfinished); resumed, its Check still covers
// the whole archive.
func Recheck(path string, opt CheckOptions) (Check, error) {
	c := Check{Archive: path, Time: time.Now().UTC().Format(time.RFC3339), VMID: archive.ParseName(path).VMID}
	ropt := RepairOptions{SidecarDir: opt.SidecarDir, NoLocate: true, Progress: opt.Progress, Context: opt.Context, Resume: opt.Resume}
	if opt.Checkpoint != nil {
		every, bytes := cmp.Or(opt.CheckpointEvery, 30*time.Second), cmp.Or(opt.CheckpointBytes, 1<<30)
		var saved int64
		last := time.Now()
		ropt.Checkpoint = func(done int64, point func() *ScanPoint) {
			stop := opt.Context != nil && opt.Context.Err() != nil
			if stop || done-saved >= bytes || time.Since(last) >= every {
				opt.Checkpoint(point())
				saved, last = done, time.Now()
			}
		}
	}
	rr, err := Repair(path, ropt)
	switch {
	case errors.Is(err, context.Canceled):
		return c, err
	case errors.Is(err, ErrNoSidecar):
		c.Result, c.Detail = ScrubNoSidecar, "never protected (vzsalvage protect "+path+")"
		return c, nil
	case err != nil:
		c.Result, c.Detail = ScrubError, err.Error()
		return c, nil
	}
	c.Sidecar, c.Bytes, c.ResumedAt = rr.Sidecar, rr.Size, rr.ResumedAt
	switch {
	case rr.Intact:
		c.Result = ScrubOK
	case rr.Complete:
		c.Result, c.Damaged = ScrubRepairable, rr.Damage.Total(damage.Tainted)
		c.Detail = fmt.Sprintf("%d damaged bytes in %d places, all rebuildable: vzsalvage repair --in-place %s", c.Damaged, rr.Damage.Len(), path)
	default:
		c.Result, c.Damaged = ScrubDamaged, rr.Damage.Total(damage.Tainted)
		c.Detail = fmt.Sprintf("%d damaged bytes in %d places, %d beyond the parity: vzsalvage repair %s", c.Damaged, rr.Damage.Len(),
			rr.Unrepairable.Total(damage.Tainted), path)
	}
	if b, err := json.Marshal(c); err == nil {
		report.WriteFileAtomic(rr.Sidecar+".check", b, 0o644) // best effort: the storage may be read-only
	}
	return c, nil
}

// Subset selects a slice of the archives: N of T (1 ≤ N ≤ T), by a hash of
// each archive's name, so that T runs with N = 1..T check every archive
// exactly once whatever archives come and go.
type Subset struct{ N, T int }

// ParseSubset reads "N/T".
func ParseSubset(s string) (Subset, error) {
	if s == "" {
		return Subset{1, 1}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	n, err1 := strconv.Atoi(a)
	t, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || t < 1 || n < 1 || n > t || t > 10000 {
		return Subset{}, fmt.Errorf("subset %q: want N/T with 1 ≤ N ≤ T (e.g. 3/7)", s)
	}
	return Subset{n, t}, nil
}

func (s Subset) String() string { return fmt.Sprintf("%d/%d", s.N, s.T) }

// Has reports whether an archive belongs to the subset.
func (s Subset) Has(path string) bool {
	h := fnv.New32a()
	h.Write([]byte(filepath.Base(path)))
	return int(h.Sum32()%uint32(s.T)) == s.N-1
}

// FindArchives lists the vzdump archives in dirs (not recursive), sorted.
func FindArchives(dirs []string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if n := archive.ParseName(e.Name()); e.Type().IsRegular() && n.VMID != 0 && !n.InProgress {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Orphans lists the sidecars in dirs (and sidecarDir) whose archive is
// gone (vzdump's pruning does not know them).
func Orphans(dirs []string, sidecarDir string) []string {
	have := map[string]bool{}
	var sidecars []string
	for _, d := range append(dirs, sidecarDir) {
		if d == "" {
			continue
		}
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if strings.HasSuffix(e.Name(), ".vzsalvage") {
				sidecars = append(sidecars, p)
			} else {
				have[e.Name()] = true
			}
		}
	}
	var out []string
	for _, s := range sidecars {
		if !have[strings.TrimSuffix(filepath.Base(s), ".vzsalvage")] {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// ScrubState is the resumable state of a scrub (the --state file): the
// archives checked so far in the current run and how far the check of the
// one being checked got.
type ScrubState struct {
	Version  int              `json:"version"`
	Subset   string           `json:"subset"`
	Dirs     []string         `json:"dirs"`
	Started  string           `json:"started"`
	Finished string           `json:"finished,omitempty"`
	Done     map[string]Check `json:"done"`
	Partial  *ScanPoint       `json:"partial,omitempty"`
}

// LoadState reads a state file; a missing file, a finished run or one of
// other dirs or subset gives a fresh state (resume false).
func LoadState(path string, dirs []string, sub Subset) (st *ScrubState, resume bool, err error) {
	fresh := &ScrubState{Version: 1, Subset: sub.String(), Dirs: dirs, Started: time.Now().UTC().Format(time.RFC3339), Done: map[string]Check{}}
	if path == "" {
		return fresh, false, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var old ScrubState
	if err := json.Unmarshal(b, &old); err != nil || old.Version != 1 {
		return fresh, false, nil // unreadable: start again
	}
	if old.Finished != "" || old.Subset != fresh.Subset || strings.Join(old.Dirs, "\x00") != strings.Join(dirs, "\x00") || old.Done == nil {
		return fresh, false, nil
	}
	return &old, true, nil
}

// Save writes the state atomically.
func (s *ScrubState) Save(path string) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return report.WriteFileAtomic(path, append(b, '\n'), 0o644)
}
