// Package archive opens vzdump backup files: it reads vzdump's file names,
// detects the compression by magic bytes (never by name), and returns the
// decompressed payload stream with its damage account.
package archive

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Name is what a vzdump file name says.
type Name struct {
	// Guest is "qemu" (a VM, payload "vma") or "lxc" (a container,
	// payload "tar"); "" when the name is not vzdump's.
	Guest string `json:"guest,omitempty"`
	VMID  int    `json:"vmid,omitempty"`
	// Time is the backup's start time as written in the name (the host's
	// local time, recorded here without a zone).
	Time time.Time `json:"time,omitzero"`
	// Payload is "vma" or "tar" by the name's extension.
	Payload string `json:"payload,omitempty"`
	// Ext is the compression extension in the name (".zst", ".gz", ".lzo",
	// ".bz2") or "".
	Ext string `json:"ext,omitempty"`
	// InProgress is set for vzdump's temporary ".dat" names.
	InProgress bool `json:"in_progress,omitempty"`
}

var nameRE = regexp.MustCompile(`^vzdump-(qemu|lxc|openvz)-([1-9][0-9]{2,8})-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2})\.(vma|tar|tgz|dat)(\.zst|\.gz|\.lzo|\.bz2)?$`)

// ParseName reads a vzdump file name (the base name of path). Names that
// are not vzdump's give a Name with only Payload and Ext guessed from the
// extension.
func ParseName(path string) Name {
	base := filepath.Base(path)
	m := nameRE.FindStringSubmatch(base)
	if m == nil {
		var n Name
		for _, ext := range []string{".zst", ".gz", ".lzo", ".bz2"} {
			if strings.HasSuffix(base, ext) {
				n.Ext = ext
				base = strings.TrimSuffix(base, ext)
				break
			}
		}
		switch {
		case strings.HasSuffix(base, ".vma"):
			n.Payload = "vma"
		case strings.HasSuffix(base, ".tar"):
			n.Payload = "tar"
		}
		return n
	}
	n := Name{Guest: m[1], Ext: m[10]}
	if n.Guest == "openvz" {
		n.Guest = "lxc"
	}
	n.VMID, _ = strconv.Atoi(m[2])
	num := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	t := time.Date(num(3), time.Month(num(4)), num(5), num(6), num(7), num(8), 0, time.UTC)
	if t.Month() == time.Month(num(4)) && t.Day() == num(5) {
		n.Time = t
	}
	switch m[9] {
	case "vma":
		n.Payload = "vma"
	case "tar":
		n.Payload = "tar"
	case "tgz":
		n.Payload, n.Ext = "tar", ".gz"
	case "dat":
		n.InProgress = true
		if n.Guest == "qemu" {
			n.Payload = "vma"
		} else {
			n.Payload = "tar"
		}
	}
	return n
}
