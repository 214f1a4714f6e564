package wgconf

import (
	"bytes"
	"io"
	"strings"
)

// image is a File's rendering as pieces: head (the kept lines, and the
// separator before the first managed block), then the managed blocks
// joined by eol. Its blocks are the File's cached strings, so keeping an
// image of a past write costs a string header per peer, not the bytes.
type image struct {
	head   string
	eol    string
	blocks []string
}

// image renders the blocks not rendered yet and returns the File's image,
// which stays valid when f changes later. Only for a File whose managed
// peers were replaced.
func (f *File) image() *image {
	kept := f.unmanagedBytes()
	eol := f.renderEOL(kept)
	if len(f.blocks) != len(f.managed) || f.blocksEOL != eol {
		f.blocks, f.blocksEOL = make([]string, len(f.managed)), eol
	}
	for i := range f.managed {
		if f.blocks[i] == "" {
			p := &f.managed[i]
			var b bytes.Buffer
			writePeer(&b, *p, eol)
			block := b.String()
			f.blocks[i] = block
			// The peer's keys become substrings of its block, which is kept
			// anyway: at 50,000 peers their own copies were 11 MB.
			p.PublicKey = within(block, p.PublicKey)
			p.PresharedKey = within(block, p.PresharedKey)
		}
	}
	if len(kept) > 0 && len(f.managed) > 0 {
		switch { // complete the last kept line, then a blank line
		case bytes.HasSuffix(kept, []byte("\r")):
			kept = append(kept, '\n')
		case !bytes.HasSuffix(kept, []byte("\n")):
			kept = append(kept, eol...)
		}
		kept = append(kept, eol...)
	}
	return &image{head: string(kept), eol: eol, blocks: append([]string(nil), f.blocks...)}
}

// writeFrom writes the image's bytes from offset off on.
func (im *image) writeFrom(w io.StringWriter, off int64) {
	write := func(s string) {
		if off >= int64(len(s)) {
			off -= int64(len(s))
			return
		}
		w.WriteString(s[off:])
		off = 0
	}
	write(im.head)
	for i, b := range im.blocks {
		if i > 0 {
			write(im.eol) // a blank line between sections
		}
		write(b)
	}
}

// equal reports whether the image renders exactly b.
func (im *image) equal(b []byte) bool {
	rest := b
	same := func(s string) bool {
		if len(s) > len(rest) || string(rest[:len(s)]) != s {
			return false
		}
		rest = rest[len(s):]
		return true
	}
	if !same(im.head) {
		return false
	}
	for i, bl := range im.blocks {
		if i > 0 && !same(im.eol) || !same(bl) {
			return false
		}
	}
	return len(rest) == 0
}

// commonPrefix returns how many leading bytes a and b share, found by
// comparing pieces: blocks that did not change are the same string, so
// this costs a comparison per peer, not per byte.
func commonPrefix(a, b *image) int64 {
	var n int64
	same := func(x, y string) bool {
		if x == y {
			n += int64(len(x))
			return true
		}
		for i := 0; i < len(x) && i < len(y) && x[i] == y[i]; i++ {
			n++
		}
		return false
	}
	if !same(a.head, b.head) {
		return n
	}
	for i := 0; i < len(a.blocks) && i < len(b.blocks); i++ {
		if i > 0 && !same(a.eol, b.eol) || !same(a.blocks[i], b.blocks[i]) {
			return n
		}
	}
	return n // the whole of the shorter
}

// within returns s as a substring of block if block holds it, else s.
func within(block, s string) string {
	if i := strings.Index(block, s); s != "" && i >= 0 {
		return block[i : i+len(s)]
	}
	return s
}
