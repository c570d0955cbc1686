package rescue

import (
	"strings"
	"testing"

	"github.com/vzsalvage/vzsalvage/damage"
	"github.com/vzsalvage/vzsalvage/report"
)

// TestMarkdownEscapesGuestStrings: names from a hostile guest cannot forge
// lines, table cells, markup or terminal escapes in report.md.
func TestMarkdownEscapesGuestStrings(t *testing.T) {
	evil := "x\n| forged | row |\n# Heading\x1b[2J<script>`code`"
	dmg := &damage.Map{}
	dmg.Add(0, 512, damage.Lost)
	rep := &Report{Report: report.New("vzsalvage")}
	rep.Archives = []report.Archive{{Path: "/b/" + evil, Status: report.Damaged, Checksum: "unknown", ProblemCount: 1,
		Problems: []damage.Problem{{Layer: "vma", Offset: 1, Message: evil}}}}
	rep.Devices = []report.Device{{Name: evil, Size: 1 << 20, Path: "disks/" + evil, Damage: dmg}}
	rep.Volumes = []report.Volume{{ID: evil, Label: evil, FS: "ext4", Dir: "files/" + evil, Files: 1, DamagedFiles: 1, Notes: []string{evil}}}
	rep.DamagedFiles = []report.DamagedFile{{Volume: evil, Path: "/" + evil, State: "partial", Size: 10, BadBytes: 5}}
	rep.Config = "disks/" + evil
	rep.AbsentDisks = []report.AbsentDisk{{Key: evil, Volume: evil}}
	rep.Fragments = []report.Fragment{{Volume: evil, Path: "/lost+found/@1", StreamOffset: 1, Size: 200, State: report.FragmentUnverified}}
	var b strings.Builder
	WriteMarkdown(&b, rep)
	out := b.String()
	if !strings.Contains(out, "## Content without a name") || !strings.Contains(out, "`/lost+found/@1`") {
		t.Error("the unnamed content is not listed")
	}
	if strings.ContainsAny(out, "\x1b\r") {
		t.Error("a raw control character reached report.md")
	}
	header := 0 // unescaped pipes in the current table's header
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| forged") || strings.HasPrefix(line, "# Heading") {
			t.Errorf("forged line: %q", line)
		}
		text := withoutCode(line)
		if strings.Contains(text, "<script>") {
			t.Errorf("raw HTML outside code: %q", line)
		}
		switch {
		case !strings.HasPrefix(line, "|"):
			header = 0
		case header == 0:
			header = pipes(text)
		case pipes(text) != header:
			t.Errorf("a table row with %d cells, its header %d: %q", pipes(text), header, line)
		}
	}
}

// pipes counts the unescaped | of a Markdown line.
func pipes(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n
}

// withoutCode removes the code spans of a Markdown line (CommonMark: a run
// of n backticks up to the next run of exactly n).
func withoutCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) {
			b.WriteString(s[i : i+2])
			i += 2
			continue
		}
		if s[i] != '`' {
			b.WriteByte(s[i])
			i++
			continue
		}
		n := 0
		for i+n < len(s) && s[i+n] == '`' {
			n++
		}
		fence := s[i : i+n]
		end := -1
		for j := i + n; j < len(s); {
			k := strings.Index(s[j:], fence)
			if k < 0 {
				break
			}
			k += j
			m := 0
			for k+m < len(s) && s[k+m] == '`' {
				m++
			}
			if m == n {
				end = k
				break
			}
			j = k + m
		}
		if end < 0 {
			b.WriteString(fence)
			i += n
			continue
		}
		b.WriteString("CODE")
		i = end + n
	}
	return b.String()
}

// TestMarkdownContainer: the report of a damaged container backup says
// what it lost (there are no disks), where its config (pct.conf) is, which
// members the damage took whole (from the archive's problems), and how to
// bring a container back: nothing about VM disks.
func TestMarkdownContainer(t *testing.T) {
	rep := &Report{Report: report.New("vzsalvage")}
	rep.Archives = []report.Archive{{Path: "/dump/vzdump-lxc-203-2025_12_15-03_00_03.tar.zst", Payload: "tar", Status: report.Damaged,
		Checksum: "unknown", ProblemCount: 3, Problems: []damage.Problem{
			{Layer: "zstd", Offset: 1972031, Message: "block header does not lead to a valid block"},
			{Layer: "tar", Offset: 2621440, Message: "./data/f18.txt: cut by damage at byte 40960 of 135091"},
			{Layer: "tar", Offset: 3122688, Message: "resynchronised after 239104 bytes: members stored after ./data/f18.txt and before this one are lost"},
		}}}
	rep.Volumes = []report.Volume{{ID: "rootfs", Kind: "tar", FS: "tar", Size: 5 << 20, DamagedBytes: 278982, Dir: "files/rootfs", Files: 28, DamagedFiles: 1}}
	rep.DamagedFiles = []report.DamagedFile{{Volume: "rootfs", Path: "/data/f18.txt", State: "partial", Size: 135091, BadBytes: 94131}}
	rep.Config = "pct.conf"
	var b strings.Builder
	WriteMarkdown(&b, rep)
	out := b.String()
	for _, bad := range []string{"Lost:** nothing", "every disk", "VM config", "qm disk import", "tar filesystem"} {
		if strings.Contains(out, bad) {
			t.Errorf("report.md says %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{"272.4 KiB", "**Container config:** `pct.conf`", "members stored after ./data/f18.txt and before this one are lost",
		"pct restore", "pct mount", "files/rootfs/"} {
		if !strings.Contains(out, want) {
			t.Errorf("report.md lacks %q:\n%s", want, out)
		}
	}
}

// TestMarkdownFlipHint: a zstd archive without a sidecar with a block
// that fails to decode gets the repair step; a gzip archive does not.
func TestMarkdownFlipHint(t *testing.T) {
	corrupt := damage.Problem{Layer: "zstd", Kind: damage.Corrupt, Offset: 100, Message: "block fails"}
	for _, tc := range []struct {
		name        string
		compression string
		problems    []damage.Problem
		want        bool
	}{
		{"one failing block", "zstd", []damage.Problem{corrupt}, true},
		{"two", "zstd", []damage.Problem{corrupt, corrupt}, true},
		{"gzip", "gzip", []damage.Problem{{Layer: "gzip", Kind: damage.Corrupt}}, false},
	} {
		rep := &Report{Report: report.New("vzsalvage")}
		rep.Archives = []report.Archive{{Path: "/b/a.vma.zst", Compression: tc.compression, Status: report.Damaged, Checksum: "unknown",
			ProblemCount: len(tc.problems), Problems: tc.problems}}
		var b strings.Builder
		WriteMarkdown(&b, rep)
		if got := strings.Contains(b.String(), "vzsalvage repair /b/a.vma.zst -o"); got != tc.want {
			t.Errorf("%s: repair step %v, want %v", tc.name, got, tc.want)
		}
	}
}
