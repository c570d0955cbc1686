package volume

import (
	"errors"
	"fmt"
	"strconv"
)

// LVM2 text metadata is lvm2's configuration syntax:
//
//	name {            # a section
//		key = 12      # an integer
//		key = "text"  # a string (\" and \\ escaped)
//		key = [ "a", 1 ]
//	}
//
// The parser below builds a small tree from it. It is bounded by the text's
// length, a nesting limit and an element limit, and never panics.
const (
	cfgMaxDepth = 32
	cfgMaxNodes = 1 << 20
)

// cfgValue is a scalar or an array.
type cfgValue struct {
	str   string
	num   int64
	isNum bool
	list  []cfgValue
	isArr bool
}

// cfgNode is a section (children) or a key with a value.
type cfgNode struct {
	name     string
	isSec    bool
	children []*cfgNode
	value    cfgValue
}

// child returns the first child named name, or nil.
func (n *cfgNode) child(name string) *cfgNode {
	if n == nil {
		return nil
	}
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// section returns the child section named name, or nil.
func (n *cfgNode) section(name string) *cfgNode {
	if c := n.child(name); c != nil && c.isSec {
		return c
	}
	return nil
}

// str returns the string value of key, or "".
func (n *cfgNode) str(key string) string {
	if c := n.child(key); c != nil && !c.isSec && !c.value.isNum && !c.value.isArr {
		return c.value.str
	}
	return ""
}

// num returns the integer value of key.
func (n *cfgNode) num(key string) (int64, bool) {
	if c := n.child(key); c != nil && !c.isSec && c.value.isNum {
		return c.value.num, true
	}
	return 0, false
}

// list returns the array value of key.
func (n *cfgNode) list(key string) []cfgValue {
	if c := n.child(key); c != nil && !c.isSec && c.value.isArr {
		return c.value.list
	}
	return nil
}

// strings returns the string elements of the array value of key.
func (n *cfgNode) strings(key string) []string {
	var out []string
	for _, v := range n.list(key) {
		if !v.isNum && !v.isArr {
			out = append(out, v.str)
		}
	}
	return out
}

var errCfgSyntax = errors.New("lvm metadata syntax error")

// cfgParser holds the parse position.
type cfgParser struct {
	b     []byte
	p     int
	nodes int
}

// parseCfg parses text up to its end or its first NUL byte.
func parseCfg(text []byte) (*cfgNode, error) {
	ps := &cfgParser{b: text}
	root := &cfgNode{isSec: true}
	if err := ps.body(root, 0); err != nil {
		return nil, err
	}
	return root, nil
}

func (ps *cfgParser) errf(format string, a ...any) error {
	return fmt.Errorf("%w at byte %d: %s", errCfgSyntax, ps.p, fmt.Sprintf(format, a...))
}

// skip passes white space and comments.
func (ps *cfgParser) skip() {
	for ps.p < len(ps.b) {
		switch c := ps.b[ps.p]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			ps.p++
		case c == '#':
			for ps.p < len(ps.b) && ps.b[ps.p] != '\n' {
				ps.p++
			}
		default:
			return
		}
	}
}

// atEnd reports whether the text is over (end or NUL).
func (ps *cfgParser) atEnd() bool { return ps.p >= len(ps.b) || ps.b[ps.p] == 0 }

// body parses the contents of a section until its closing brace (or the
// end of the text for the root).
func (ps *cfgParser) body(sec *cfgNode, depth int) error {
	if depth > cfgMaxDepth {
		return ps.errf("nested too deep")
	}
	for {
		ps.skip()
		if ps.atEnd() {
			if depth == 0 {
				return nil
			}
			return ps.errf("unexpected end in section %q", sec.name)
		}
		if ps.b[ps.p] == '}' {
			if depth == 0 {
				return ps.errf("unbalanced '}'")
			}
			ps.p++
			return nil
		}
		name := ps.ident()
		if name == "" {
			return ps.errf("name expected")
		}
		if ps.nodes++; ps.nodes > cfgMaxNodes {
			return ps.errf("too many elements")
		}
		ps.skip()
		if ps.atEnd() {
			return ps.errf("unexpected end after %q", name)
		}
		n := &cfgNode{name: name}
		switch ps.b[ps.p] {
		case '{':
			ps.p++
			n.isSec = true
			if err := ps.body(n, depth+1); err != nil {
				return err
			}
		case '=':
			ps.p++
			v, err := ps.value(depth)
			if err != nil {
				return err
			}
			n.value = v
		default:
			return ps.errf("'{' or '=' expected after %q", name)
		}
		sec.children = append(sec.children, n)
	}
}

// ident reads a name: letters, digits and _ - . + (as lvm2 allows in
// VG, LV and key names).
func (ps *cfgParser) ident() string {
	s := ps.p
	for ps.p < len(ps.b) && isNameByte(ps.b[ps.p]) {
		ps.p++
	}
	return string(ps.b[s:ps.p])
}

// value reads a string, an integer or an array.
func (ps *cfgParser) value(depth int) (cfgValue, error) {
	ps.skip()
	if ps.atEnd() {
		return cfgValue{}, ps.errf("value expected")
	}
	switch c := ps.b[ps.p]; {
	case c == '"':
		s, err := ps.quoted()
		return cfgValue{str: s}, err
	case c == '[':
		if depth > cfgMaxDepth {
			return cfgValue{}, ps.errf("nested too deep")
		}
		ps.p++
		v := cfgValue{isArr: true}
		for {
			ps.skip()
			if ps.atEnd() {
				return v, ps.errf("unterminated array")
			}
			if ps.b[ps.p] == ']' {
				ps.p++
				return v, nil
			}
			if len(v.list) > 0 {
				if ps.b[ps.p] != ',' {
					return v, ps.errf("',' expected in array")
				}
				ps.p++
				ps.skip()
			}
			if ps.nodes++; ps.nodes > cfgMaxNodes {
				return v, ps.errf("too many elements")
			}
			e, err := ps.value(depth + 1)
			if err != nil {
				return v, err
			}
			v.list = append(v.list, e)
		}
	case c == '-' || c >= '0' && c <= '9':
		s := ps.p
		ps.p++
		for ps.p < len(ps.b) && (ps.b[ps.p] >= '0' && ps.b[ps.p] <= '9' || ps.b[ps.p] == '.') {
			ps.p++
		}
		txt := string(ps.b[s:ps.p])
		if n, err := strconv.ParseInt(txt, 10, 64); err == nil {
			return cfgValue{num: n, isNum: true}, nil
		}
		if f, err := strconv.ParseFloat(txt, 64); err == nil {
			return cfgValue{str: txt, num: int64(f)}, nil
		}
		return cfgValue{}, ps.errf("bad number %q", txt)
	default:
		return cfgValue{}, ps.errf("value expected")
	}
}

// quoted reads a double-quoted string with \" and \\ escapes.
func (ps *cfgParser) quoted() (string, error) {
	ps.p++ // opening quote
	var out []byte
	for ps.p < len(ps.b) {
		c := ps.b[ps.p]
		ps.p++
		switch c {
		case '"':
			return string(out), nil
		case '\\':
			if ps.p < len(ps.b) {
				out = append(out, ps.b[ps.p])
				ps.p++
			}
		case 0:
			return "", ps.errf("NUL in string")
		default:
			out = append(out, c)
		}
	}
	return "", ps.errf("unterminated string")
}
