package fs

import "strings"

// ValidName reports whether name can be one element of a path, on the host
// and in io/fs: not empty, not "." or "..", without "/" or NUL. A damaged or
// hostile filesystem can hold any other name.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// SafeName returns name if it is valid, and otherwise a valid stand-in:
// "/" and NUL written as %2F and %00, "." and ".." as %2E and %2E%2E, the
// empty name as "%". Paths that Walk and IOFS produce use it, and Lookup
// accepts it.
func SafeName(name string) string {
	switch name {
	case "":
		return "%"
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	if !strings.ContainsAny(name, "/\x00") {
		return name
	}
	return strings.NewReplacer("/", "%2F", "\x00", "%00").Replace(name)
}
