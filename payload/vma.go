package payload

import (
	"fmt"
	"io"

	"github.com/vzsalvage/vzsalvage/codec"
	"github.com/vzsalvage/vzsalvage/vma"
)

// VMAPayload reads the VMA stream of a VM backup: its units are the disks.
type VMAPayload struct{}

// Kind implements Payload.
func (VMAPayload) Kind() Kind { return VMA }

// Match implements Payload: the VMA header magic.
func (VMAPayload) Match(head []byte) bool { return len(head) >= 4 && string(head[:4]) == "VMA\x00" }

// Inspect implements Payload: the header's configs and disks.
func (VMAPayload) Inspect(r codec.Reader) (*Info, error) {
	vr, err := vma.NewReader(r, vma.Options{Salvage: true})
	if err != nil {
		return nil, err
	}
	h := vr.Header()
	info := &Info{Kind: VMA, VMA: h, Configs: vmaConfigs(h), Problems: vr.Result().Problems}
	for _, d := range h.Devices {
		info.Units = append(info.Units, Unit{ID: int(d.ID), Name: d.Name, Size: d.Size})
	}
	return info, nil
}

func vmaConfigs(h *vma.Header) []Config {
	var out []Config
	for _, c := range h.Configs {
		out = append(out, Config{Name: c.Name, Data: c.Data})
	}
	return out
}

// Scan implements Payload: every cluster goes to the sink at its offset in
// its disk (blocks the archive leaves out are holes, unless a worse copy
// was delivered before: then they are written as zeros).
func (VMAPayload) Scan(r codec.Reader, sink Sink, opt Options) (*Result, error) {
	vr, err := vma.NewReader(r, vma.Options{Salvage: !opt.Strict})
	if err != nil {
		return nil, err
	}
	w := &vmaSink{sink: sink, known: map[uint8]bool{}}
	if sink != nil {
		for _, d := range vr.Header().Devices {
			if err := w.announce(d); err != nil {
				return nil, err
			}
		}
	}
	var readErr error
	for {
		c, err := vr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if sink != nil {
			if err := w.cluster(vr.Header(), c); err != nil {
				return nil, err
			}
		}
	}
	vres := vr.Result()
	res := &Result{Kind: VMA, Configs: vmaConfigs(vr.Header()), Problems: vres.Problems, ProblemCount: vres.ProblemCount,
		Intact: vres.Intact() && readErr == nil, Err: readErr, VMAHeader: vr.Header(), VMA: vres}
	for _, d := range vres.Devices {
		u := Unit{ID: int(d.ID), Name: d.Name, Size: d.Size}
		if !d.Damage.Empty() {
			u.Damage = d.Damage
		}
		res.Units = append(res.Units, u)
	}
	return res, nil
}

// vmaSink turns clusters into the sink's writes.
type vmaSink struct {
	sink  Sink
	known map[uint8]bool
	zero  []byte
}

func (w *vmaSink) announce(d vma.Device) error {
	w.known[d.ID] = true
	return w.sink.Unit(Unit{ID: int(d.ID), Name: d.Name, Size: d.Size})
}

func (w *vmaSink) cluster(h *vma.Header, c *vma.Cluster) error {
	if !w.known[c.Dev] {
		// headerless salvage: the device is learned from its clusters
		d := vma.Device{ID: c.Dev, Name: fmt.Sprintf("dev%d", c.Dev)}
		if hd := h.Device(c.Dev); hd != nil {
			d = *hd
		}
		if err := w.announce(d); err != nil {
			return err
		}
	}
	base := c.Offset()
	k := 0
	for j := 0; j < vma.BlocksPerCluster; {
		set := c.Mask&(1<<j) != 0
		n := 1
		for j+n < vma.BlocksPerCluster && (c.Mask&(1<<(j+n)) != 0) == set {
			n++
		}
		off := base + int64(j)*vma.BlockSize
		switch {
		case set:
			if err := w.sink.WriteAt(int(c.Dev), c.Data[k*vma.BlockSize:(k+n)*vma.BlockSize], off); err != nil {
				return err
			}
			k += n
		case c.Rewrite:
			if w.zero == nil {
				w.zero = make([]byte, vma.ClusterSize)
			}
			if err := w.sink.WriteAt(int(c.Dev), w.zero[:n*vma.BlockSize], off); err != nil {
				return err
			}
		}
		j += n
	}
	return nil
}
