package payload

import (
	"errors"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/ctar"
)

// TarPayload reads the tar stream of a container backup: its units are
// the members with content (regular files), its configs pct.conf and
// pct.fw.
type TarPayload struct{}

// Kind implements Payload.
func (TarPayload) Kind() Kind { return Tar }

// Match implements Payload: a valid tar header.
func (TarPayload) Match(head []byte) bool { return len(head) >= ctar.BlockSize && ctar.IsHeader(head) }

// Inspect implements Payload: the config files vzdump stores first.
func (TarPayload) Inspect(r codec.Reader) (*Info, error) {
	x, err := ctar.Scan(r, ctar.Options{ConfigsOnly: true})
	if err != nil {
		return nil, err
	}
	return &Info{Kind: Tar, Configs: tarConfigs(x), Problems: x.Problems}, nil
}

func tarConfigs(x *ctar.Index) []Config {
	var out []Config
	for _, c := range x.Configs {
		out = append(out, Config{Name: c.Name, Data: c.Data})
	}
	return out
}

// Scan implements Payload: every member's stored bytes go to the sink at
// their file offsets (holes stay holes).
func (TarPayload) Scan(r codec.Reader, sink Sink, opt Options) (*Result, error) {
	var sopt ctar.Options
	sopt.Strict = opt.Strict
	if sink != nil {
		last := -1
		sopt.Data = func(i int, m *ctar.Member, p []byte, off int64) error {
			if i != last {
				last = i
				if err := sink.Unit(Unit{ID: i, Name: m.Name, Size: m.Size}); err != nil {
					return err
				}
			}
			return sink.WriteAt(i, p, off)
		}
	}
	res, err := ScanTar(r, sopt)
	if res != nil {
		x := res.Tar
		for i, m := range x.Members {
			if m.Type != ctar.TypeReg && m.Type != ctar.TypeRegOld && m.Type != ctar.TypeCont {
				continue
			}
			res.Units = append(res.Units, Unit{ID: i, Name: m.Name, Size: m.Size, Damage: x.MemberDamage(m)})
		}
	}
	return res, err
}

// ScanTar scans a tar stream with the hooks and options of sopt (what a
// container's restore needs beyond a Sink) and returns what Scan would,
// without Units: a container's members are in Tar, and a list beside
// them would cost some 50 bytes per file for the whole read.
func ScanTar(r codec.Reader, sopt ctar.Options) (*Result, error) {
	x, err := ctar.Scan(r, sopt)
	if err != nil && x == nil {
		return nil, err
	}
	res := &Result{Kind: Tar, Configs: tarConfigs(x), Problems: x.Problems, ProblemCount: x.ProblemCount,
		Intact: x.Intact(), Tar: x}
	if err != nil {
		if !errors.Is(err, ctar.ErrHeader) && !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrTruncated) {
			return nil, err // the sink's, or reading the file failed
		}
		res.Err, res.Intact = err, false
	}
	return res, nil
}
