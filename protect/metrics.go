package protect

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vzsalvage/vzsalvage/report"
)

// WriteMetrics writes a scrub's outcome as a Prometheus textfile (for the
// node exporter's textfile collector), atomically.
func WriteMetrics(path string, st *ScrubState, orphans int, took time.Duration) error {
	var b strings.Builder
	gauge := func(name, help string) { fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name) }
	gauge("vzsalvage_scrub_last_run_timestamp_seconds", "When the last scrub run ended.")
	fmt.Fprintf(&b, "vzsalvage_scrub_last_run_timestamp_seconds %d\n", time.Now().Unix())
	gauge("vzsalvage_scrub_duration_seconds", "How long the last scrub run took.")
	fmt.Fprintf(&b, "vzsalvage_scrub_duration_seconds %.3f\n", took.Seconds())
	counts := map[string]int{}
	var bytes int64
	paths := make([]string, 0, len(st.Done))
	for p, c := range st.Done {
		counts[c.Result]++
		bytes += c.Bytes
		paths = append(paths, p)
	}
	sort.Strings(paths)
	gauge("vzsalvage_scrub_archives", "Archives checked in the current scrub cycle, by result.")
	for _, r := range []string{ScrubOK, ScrubRepairable, ScrubDamaged, ScrubNoSidecar, ScrubError} {
		fmt.Fprintf(&b, "vzsalvage_scrub_archives{result=%q} %d\n", r, counts[r])
	}
	gauge("vzsalvage_scrub_bytes", "Archive bytes read in the current scrub cycle.")
	fmt.Fprintf(&b, "vzsalvage_scrub_bytes %d\n", bytes)
	gauge("vzsalvage_scrub_orphan_sidecars", "Sidecars whose archive is gone.")
	fmt.Fprintf(&b, "vzsalvage_scrub_orphan_sidecars %d\n", orphans)
	gauge("vzsalvage_archive_intact", "1 when the archive is bit for bit what was protected.")
	for _, p := range paths {
		c := st.Done[p]
		v := 0
		if c.Result == ScrubOK {
			v = 1
		}
		fmt.Fprintf(&b, "vzsalvage_archive_intact{archive=%q,vmid=\"%d\",result=%q} %d\n", filepath.Base(p), c.VMID, c.Result, v)
	}
	return report.WriteFileAtomic(path, []byte(b.String()), 0o644)
}
