package vma

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"time"
)

// Header is an archive's main header.
type Header struct {
	UUID    [16]byte
	Ctime   time.Time
	Configs []Config
	// Devices in id order. Device ids need not be contiguous.
	Devices []Device
	// Size is the header's size in the stream (a multiple of 512), set by
	// ParseHeader and by Writer.
	Size int
}

// Device returns the device with the given id, or nil.
func (h *Header) Device(id uint8) *Device {
	for i := range h.Devices {
		if h.Devices[i].ID == id {
			return &h.Devices[i]
		}
	}
	return nil
}

// UUIDString formats the uuid as 8-4-4-4-12 hex digits.
func (h *Header) UUIDString() string { return FormatUUID(h.UUID) }

// FormatUUID formats a uuid as 8-4-4-4-12 hex digits.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// HeaderSize checks the fixed part of a main header (at least its first 64
// bytes) and returns the whole header's size.
func HeaderSize(b []byte) (int, error) {
	if len(b) < 64 || string(b[:4]) != headerMagic {
		return 0, ErrNotVMA
	}
	hs := int64(binary.BigEndian.Uint32(b[offHeaderSize:]))
	if hs < HeaderFixedSize || hs%512 != 0 || hs > MaxHeaderSize {
		return 0, fmt.Errorf("%w %d", ErrHeaderSize, hs)
	}
	return int(hs), nil
}

// headerMD5 returns the MD5 of a header with its checksum field zeroed.
func headerMD5(b []byte) [16]byte {
	h := md5.New()
	h.Write(b[:offMD5])
	h.Write(make([]byte, 16))
	h.Write(b[offMD5+16:])
	var s [16]byte
	h.Sum(s[:0])
	return s
}

// ParseHeader parses a complete main header (HeaderSize bytes). It applies
// the checks of Proxmox's reader. With a wrong checksum it still returns
// what it parsed, together with an error wrapping ErrHeaderChecksum, so a
// salvaging reader can decide to use it.
func ParseHeader(b []byte) (*Header, error) {
	hs, err := HeaderSize(b)
	if err != nil {
		return nil, err
	}
	if len(b) < hs {
		return nil, fmt.Errorf("%w: have %d of %d bytes", ErrHeaderSize, len(b), hs)
	}
	b = b[:hs]
	var sumErr error
	if sum := headerMD5(b); !bytes.Equal(sum[:], b[offMD5:offMD5+16]) {
		sumErr = ErrHeaderChecksum
	}
	if v := binary.BigEndian.Uint32(b[offVersion:]); v != 1 {
		return nil, fmt.Errorf("%w %d", ErrVersion, v)
	}
	bbo := int(binary.BigEndian.Uint32(b[offBlobOffset:]))
	bbs := int64(binary.BigEndian.Uint32(b[offBlobSize:]))
	if bbo != HeaderFixedSize || int64(bbo)+bbs > int64(hs) {
		return nil, ErrBlobBuffer
	}
	blobs := b[bbo : int64(bbo)+bbs]
	blob := func(p uint32) ([]byte, error) {
		if p == 0 || int64(p)+2 > bbs {
			return nil, ErrDataPointer
		}
		n := int64(binary.LittleEndian.Uint16(blobs[p:]))
		if int64(p)+2+n > bbs {
			return nil, ErrDataPointer
		}
		return blobs[int64(p)+2 : int64(p)+2+n], nil
	}
	h := &Header{Size: hs}
	copy(h.UUID[:], b[offUUID:])
	h.Ctime = time.Unix(int64(binary.BigEndian.Uint64(b[offCtime:])), 0).UTC()
	for i := 0; i < MaxConfigs; i++ {
		np := binary.BigEndian.Uint32(b[offConfigName+4*i:])
		dp := binary.BigEndian.Uint32(b[offConfigData+4*i:])
		if np == 0 && dp == 0 {
			continue
		}
		name, err := blob(np)
		if err != nil {
			return nil, err
		}
		data, err := blob(dp)
		if err != nil {
			return nil, err
		}
		h.Configs = append(h.Configs, Config{Name: cString(name), Data: append([]byte(nil), data...)})
	}
	for i := 1; i < MaxDevices; i++ {
		d := b[offDevInfo+devInfoSize*i:]
		np := binary.BigEndian.Uint32(d)
		if np == 0 {
			continue
		}
		name, err := blob(np)
		if err != nil {
			return nil, err
		}
		size := binary.BigEndian.Uint64(d[8:])
		dev := Device{ID: uint8(i), Name: cString(name), Size: int64(size)}
		if size == 0 || size > MaxDeviceSize {
			return nil, fmt.Errorf("%w: id %d name %q size %d", ErrDevice, i, dev.Name, size)
		}
		h.Devices = append(h.Devices, dev)
	}
	return h, sumErr
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// SafeName reports whether a device or config name is safe to use as a
// file name as it is.
func SafeName(s string) bool { return validName(s) }

// validName reports whether a device name is safe to use in a file name.
func validName(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c == '/' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

// MarshalHeader lays out a main header as Proxmox's writer does: blobs in the
// order config names and data (interleaved, in config order), then device
// names in id order; the blob table grows in 512-byte steps; blob_buffer_size
// is the exact used length. It sets h.Size.
func MarshalHeader(h *Header) ([]byte, error) {
	if len(h.Configs) > MaxConfigs {
		return nil, fmt.Errorf("vma: too many configs (%d)", len(h.Configs))
	}
	var tab []byte
	pos := 1
	alloc := func(data []byte) (uint32, error) {
		if len(data) > maxBlob {
			return 0, fmt.Errorf("vma: blob of %d bytes is too large", len(data))
		}
		for len(tab) < pos+len(data)+2 {
			tab = append(tab, make([]byte, (len(data)+2+511)/512*512)...)
		}
		p := pos
		binary.LittleEndian.PutUint16(tab[p:], uint16(len(data)))
		copy(tab[p+2:], data)
		pos += len(data) + 2
		return uint32(p), nil
	}
	fixed := make([]byte, HeaderFixedSize)
	copy(fixed, headerMagic)
	binary.BigEndian.PutUint32(fixed[offVersion:], 1)
	copy(fixed[offUUID:], h.UUID[:])
	binary.BigEndian.PutUint64(fixed[offCtime:], uint64(h.Ctime.Unix()))
	for i, c := range h.Configs {
		np, err := alloc(append([]byte(c.Name), 0))
		if err != nil {
			return nil, err
		}
		dp, err := alloc(c.Data)
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(fixed[offConfigName+4*i:], np)
		binary.BigEndian.PutUint32(fixed[offConfigData+4*i:], dp)
	}
	seen := map[uint8]bool{}
	devs := append([]Device(nil), h.Devices...)
	sortDevices(devs)
	for _, d := range devs {
		if d.ID == 0 || seen[d.ID] || d.Size <= 0 || d.Size > MaxDeviceSize || !validName(d.Name) {
			return nil, fmt.Errorf("vma: invalid device %+v", d)
		}
		seen[d.ID] = true
		np, err := alloc(append([]byte(d.Name), 0))
		if err != nil {
			return nil, err
		}
		e := fixed[offDevInfo+devInfoSize*int(d.ID):]
		binary.BigEndian.PutUint32(e, np)
		binary.BigEndian.PutUint64(e[8:], uint64(d.Size))
	}
	hs := HeaderFixedSize + len(tab)
	if hs > MaxHeaderSize {
		return nil, fmt.Errorf("vma: header of %d bytes is too large", hs)
	}
	binary.BigEndian.PutUint32(fixed[offBlobOffset:], HeaderFixedSize)
	binary.BigEndian.PutUint32(fixed[offBlobSize:], uint32(pos))
	binary.BigEndian.PutUint32(fixed[offHeaderSize:], uint32(hs))
	b := append(fixed, tab...)
	sum := headerMD5(b)
	copy(b[offMD5:], sum[:])
	h.Size = hs
	return b, nil
}

func sortDevices(d []Device) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j].ID < d[j-1].ID; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}
