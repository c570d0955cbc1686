package doctor

import (
	"strconv"
	"strings"
)

// Mount is one mounted filesystem.
type Mount struct {
	Point  string `json:"point"`
	FSType string `json:"fstype"`
	Source string `json:"source"`
	// Options are the mount's and the superblock's options together, as
	// the kernel shows them ("rw,relatime,vers=4.2,soft,timeo=600,...").
	Options string `json:"options"`
}

// maxMounts bounds the mount table kept.
const maxMounts = 10000

// readMounts reads /proc/self/mountinfo, or /proc/mounts when it is
// missing (a hand-made tree).
func readMounts(h *Host) ([]Mount, bool) {
	if b, err := h.read("/proc/self/mountinfo"); err == nil {
		return parseMountinfo(string(b)), true
	}
	if b, err := h.read("/proc/mounts"); err == nil {
		return parseProcMounts(string(b)), true
	}
	return nil, false
}

// parseMountinfo reads the format of proc(5)'s /proc/PID/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountinfo(s string) []Mount {
	var out []Mount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 > len(f) {
			continue
		}
		opts := f[5]
		if sep+3 < len(f) {
			opts = mergeOptions(opts, f[sep+3])
		}
		out = append(out, Mount{Point: unescapeOctal(f[4]), FSType: f[sep+1], Source: unescapeOctal(f[sep+2]), Options: opts})
		if len(out) >= maxMounts {
			break
		}
	}
	return out
}

// parseProcMounts reads /proc/mounts (fstab's format).
func parseProcMounts(s string) []Mount {
	var out []Mount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		out = append(out, Mount{Source: unescapeOctal(f[0]), Point: unescapeOctal(f[1]), FSType: f[2], Options: f[3]})
		if len(out) >= maxMounts {
			break
		}
	}
	return out
}

// mergeOptions joins the per-mount and the superblock options, each once.
func mergeOptions(a, b string) string {
	seen := map[string]bool{}
	var out []string
	for _, o := range strings.Split(a+","+b, ",") {
		if o != "" && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return strings.Join(out, ",")
}

// unescapeOctal undoes the kernel's \040-style escapes of spaces, tabs,
// newlines and backslashes in mount paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// covering returns the mount that holds path p: the longest mount point
// that is p or one of its parents, the last one mounted when several
// share a point.
func covering(ms []Mount, p string) (Mount, bool) {
	best, found := Mount{}, false
	for _, m := range ms {
		under := p == m.Point || m.Point == "/" || strings.HasPrefix(p, m.Point+"/")
		if under && (!found || len(m.Point) >= len(best.Point)) {
			best, found = m, true
		}
	}
	return best, found
}

// option returns the value of a mount option ("timeo" -> "600"), and
// whether it is there at all (a flag such as "soft" has value "").
func (m Mount) option(name string) (string, bool) {
	for _, o := range strings.Split(m.Options, ",") {
		k, v, _ := strings.Cut(o, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}
