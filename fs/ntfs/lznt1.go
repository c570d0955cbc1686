package ntfs

import "fmt"

// lznt1 decodes LZNT1 data (NTFS compression) into out, which holds one
// compression unit: chunks of a 2-byte header (bits 0-11 the stored size
// less 3, bit 15 set when compressed) decoding to 4096 bytes each; a zero
// header ends the data. It returns how many bytes it produced.
func lznt1(out, src []byte) (int, error) {
	const chunkOut = 4096
	op, ip := 0, 0
	for ip+2 <= len(src) && op < len(out) {
		h := int(le.Uint16(src[ip:]))
		if h == 0 {
			break
		}
		size := h&0x0FFF + 1
		if ip+2+size > len(src) {
			return op, fmt.Errorf("lznt1: chunk of %d bytes past the end", size)
		}
		chunk := src[ip+2 : ip+2+size]
		ip += 2 + size
		start := op
		end := min(op+chunkOut, len(out))
		if h&0x8000 == 0 {
			op += copy(out[op:end], chunk)
			continue
		}
		for cp := 0; cp < len(chunk) && op < end; {
			flags := chunk[cp]
			cp++
			for bit := 0; bit < 8 && cp < len(chunk) && op < end; bit++ {
				if flags&(1<<bit) == 0 {
					out[op] = chunk[cp]
					op, cp = op+1, cp+1
					continue
				}
				if cp+2 > len(chunk) {
					return op, fmt.Errorf("lznt1: back-reference past the chunk")
				}
				tok := int(le.Uint16(chunk[cp:]))
				cp += 2
				pos := op - start
				obits := 4
				for 1<<obits < pos {
					obits++
				}
				lbits := 16 - obits
				offset := tok>>lbits + 1
				length := tok&(1<<lbits-1) + 3
				if offset > pos || length > end-op {
					return op, fmt.Errorf("lznt1: back-reference %d+%d at %d", offset, length, pos)
				}
				for j := 0; j < length; j++ {
					out[op] = out[op-offset]
					op++
				}
			}
		}
		if ip+2 <= len(src) && le.Uint16(src[ip:]) != 0 {
			// A chunk that decodes short is padded with zeros when more follow.
			clear(out[op:end])
			op = end
		}
	}
	return op, nil
}
