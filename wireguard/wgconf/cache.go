package wgconf

import (
	"os"
	"syscall"
)

// Cache holds the parsed file a Writer last read or wrote, for
// UpdateCached: not its bytes, since a File that was not edited renders
// what is on disk. The zero value is empty; a Cache must not be shared by
// calls that may run at once.
type Cache struct {
	file *File
	id   fileID
	// live is the image of the file in place when this Writer wrote it by
	// streaming; nil otherwise. spare is the image of the spare, valid
	// while the spare's identity is still spareID: then a write into the
	// spare skips the bytes it already holds.
	live    *image
	spare   *image
	spareID fileID
}

// fileID is what changes when anyone replaces or edits the file: a rename
// gives a new inode, an edit in place a new size or times. The change time
// cannot be set back by hand, unlike the modification time.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func (c *Cache) drop() { c.file, c.id, c.live = nil, fileID{}, nil }

// Valid reports whether c holds a parsed file.
func (c *Cache) Valid() bool { return c.file != nil }

// statID stats t's path; ok is false if it does not exist or cannot be read.
func statID(t target) (fileID, bool) {
	fi, err := os.Lstat(t.path)
	if err != nil {
		return fileID{}, false
	}
	return idOf(fi)
}

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, true
}

// sameContent reports whether a and b are one file with the same content
// as far as stat tells: the same inode, size and modification time (the
// change time moves with a rename).
func sameContent(a, b fileID) bool {
	return a.dev == b.dev && a.ino == b.ino && a.size == b.size && a.mtime == b.mtime
}
