package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/vzsalvage/vzsalvage/fs"
)

// copyFlags are the flags cp and rescue share for writing guest files out.
type copyFlags struct {
	xattrs    fs.XattrMode
	maxOutput byteSize
}

const xattrsHelp = "extended attributes to restore: safe (user.* and POSIX ACLs), all (also security.*, " +
	"trusted.* and, where owners are kept, file capabilities, which can make a guest's file run as root here), none"

func (c *copyFlags) add(f *pflag.FlagSet) {
	f.Var((*xattrFlag)(&c.xattrs), "xattrs", xattrsHelp)
	f.Var(&c.maxOutput, "max-output", "cap on the file data written, e.g. 500G (default: what the backup's disks hold)")
}

// xattrFlag is --xattrs.
type xattrFlag fs.XattrMode

func (x *xattrFlag) String() string { return fs.XattrMode(*x).String() }
func (x *xattrFlag) Type() string   { return "safe|all|none" }
func (x *xattrFlag) Set(s string) error {
	m, err := fs.ParseXattrMode(s)
	*x = xattrFlag(m)
	return err
}

// byteSize is a size flag: a number of bytes with an optional K, M, G, T
// suffix (powers of 1024).
type byteSize int64

func (b *byteSize) String() string {
	if *b == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*b), 10)
}
func (b *byteSize) Type() string { return "size" }
func (b *byteSize) Set(s string) error {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	shift := 0
	if k := len(t); k > 0 {
		if i := strings.IndexByte("KMGTP", t[k-1]); i >= 0 {
			shift, t = 10*(i+1), t[:k-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return fmt.Errorf("%q is not a size (like 500G)", s)
	}
	*b = byteSize(n << shift)
	return nil
}
