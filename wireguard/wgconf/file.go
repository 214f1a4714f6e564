package wgconf

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// markerPrefix starts the comment line that marks a [Peer] section as
// managed by wgbot. The peer's id follows it, and the [Peer] header must be on
// the very next line: "# wgbot:peer 42".
const markerPrefix = "# wgbot:peer "

// asciiSpace is what wg(8) treats as white space (isspace in the C locale).
const asciiSpace = " \t\n\v\f\r"

// ParseError reports a line that wg-quick or wg(8) would reject, or that
// wgbot cannot interpret. Its message never repeats a key's value, so it is
// safe to log.
type ParseError struct {
	Line int    // 1-based line number
	Msg  string // what is wrong with the line
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// KeyValue is one "Key = Value" line as written: the value has surrounding
// white space and any trailing "# comment" removed.
type KeyValue struct {
	Key   string
	Value string
	Line  int // 1-based line number
}

// Interface is the parsed [Interface] section. Keys wg-quick and wg(8)
// know are decoded into fields; Entries holds every line in file order,
// unknown keys included. Several [Interface] sections are merged, as wg does.
type Interface struct {
	Line       int // line of the first [Interface] header
	PrivateKey string
	ListenPort int
	FwMark     uint32
	Addresses  []netip.Prefix
	DNS        []string // servers and search domains, as written
	MTU        int
	Table      string
	SaveConfig bool
	PreUp      []string
	PostUp     []string
	PreDown    []string
	PostDown   []string
	Entries    []KeyValue
}

// Peer is a [Peer] section wgbot manages. ID is wgbot's own identifier of
// the peer (for example its database id); it is written into the marker line.
type Peer struct {
	ID                  string
	PublicKey           string
	PresharedKey        string // optional
	AllowedIPs          []netip.Prefix
	Endpoint            string // optional, host:port or [ipv6]:port
	PersistentKeepalive int    // seconds; 0 means off
}

// UnmanagedPeer is a [Peer] section wgbot does not manage (one the operator
// wrote by hand). wgbot never changes it but has to know it, for example to
// keep it on the live device.
type UnmanagedPeer struct {
	Line                int // line of its [Peer] header
	PublicKey           string
	PresharedKey        string
	AllowedIPs          []netip.Prefix
	Endpoint            string
	PersistentKeepalive int
	Entries             []KeyValue // every line in file order, unknown keys included
}

// File is a parsed configuration. It keeps every input line, so rendering a
// File whose managed peers were not replaced gives back the input byte for
// byte.
type File struct {
	src   string
	lines []line
	eol   string // ending of the first line, for files whose kept lines have none

	iface     Interface
	hasIface  bool
	unmanaged []UnmanagedPeer

	// managed holds the managed peers in file order until SetManagedPeers
	// replaces them; from then on they are sorted by ID and Render writes
	// them as one block at the end of the file.
	managed  []Peer
	replaced bool
	// blocks[i] is managed[i] as Render writes it with blocksEOL, or ""
	// until it is rendered: a File kept in memory re-renders only the
	// peers that changed, so a write at 50,000 peers is a copy.
	blocks    []string
	blocksEOL string
	// edited says the managed peers changed since Parse or since a Writer
	// last wrote the file, so a cached File that is not edited renders
	// what is on disk.
	edited bool
}

type line struct {
	raw string // as read, line ending included
	// wgbot drops the line when it renders its managed peers: it belongs to
	// a managed peer's block or is a marker line that no longer marks one.
	dropOnReplace bool
}

type lineKind uint8

const (
	kindBlank lineKind = iota
	kindComment
	kindMarker
	kindInterface
	kindPeer
	kindKeyValue
)

type token struct {
	kind  lineKind
	key   string
	value string
	id    string // marker id
}

// section is a header line and the key/value lines up to the next header.
type section struct {
	kind    lineKind // kindInterface or kindPeer
	header  int      // index of the header line
	lastKV  int      // index of its last key/value line, or header when none
	from    int      // index of its first entry in Parse's slice of all entries
	entries []KeyValue
}

// Parse parses a wg-quick configuration. Empty input is a valid, empty file.
func Parse(data []byte) (*File, error) {
	src := string(data)
	f := &File{src: src, eol: detectEOL(src)}
	raws := splitLines(src)
	f.lines = make([]line, len(raws))
	toks := make([]token, len(raws))
	for i, raw := range raws {
		f.lines[i].raw = raw
		tok, msg := classify(raw)
		if msg != "" {
			return nil, &ParseError{Line: i + 1, Msg: msg}
		}
		toks[i] = tok
	}

	var sections []section
	// All key/value lines in one slice: each section's entries are a
	// contiguous run of it, which saves an allocation per section.
	all := make([]KeyValue, 0, len(toks))
	for i, tok := range toks {
		switch tok.kind {
		case kindInterface, kindPeer:
			sections = append(sections, section{kind: tok.kind, header: i, lastKV: i, from: len(all)})
		case kindKeyValue:
			if len(sections) == 0 {
				// The key is not quoted: a pasted key alone on a line
				// ("<base64>=") reads as a key with an empty value.
				return nil, &ParseError{Line: i + 1, Msg: "key/value line before the first [Interface] or [Peer] section"}
			}
			all = append(all, KeyValue{Key: tok.key, Value: tok.value, Line: i + 1})
			sections[len(sections)-1].lastKV = i
		case kindMarker:
			// Every marker is wgbot's line. One that does not directly precede
			// a [Peer] header marks nothing and is dropped on the next render,
			// so it can never come to mark a hand-made peer once the lines
			// between them are gone.
			f.lines[i].dropOnReplace = true
		}
	}

	for i := range sections {
		s := &sections[i]
		to := len(all)
		if i+1 < len(sections) {
			to = sections[i+1].from
		}
		s.entries = all[s.from:to:to] // capped: appending never writes into the next run
	}

	// Sections in file order, so that the first error reported is the
	// first in the file.
	for _, s := range sections {
		if s.kind == kindInterface {
			if !f.hasIface {
				f.hasIface = true
				f.iface.Line = s.header + 1
			}
			if err := f.iface.parse(s.entries); err != nil {
				return nil, err
			}
			f.iface.Entries = append(f.iface.Entries, s.entries...)
			continue
		}
		pc, err := parsePeerEntries(s)
		if err != nil {
			return nil, err
		}
		if s.header == 0 || toks[s.header-1].kind != kindMarker {
			f.unmanaged = append(f.unmanaged, UnmanagedPeer{
				Line:                s.header + 1,
				PublicKey:           pc.PublicKey,
				PresharedKey:        pc.PresharedKey,
				AllowedIPs:          pc.AllowedIPs,
				Endpoint:            pc.Endpoint,
				PersistentKeepalive: pc.PersistentKeepalive,
				Entries:             s.entries,
			})
			continue
		}
		pc.ID = toks[s.header-1].id
		f.managed = append(f.managed, pc)
		// The block is the marker, the section up to its last key/value
		// line, and the one blank line wgbot writes before each marker.
		// Comments and blank lines after the last key/value line stay: they
		// usually introduce whatever comes next.
		start := s.header - 1
		if start > 0 && toks[start-1].kind == kindBlank {
			start--
		}
		for i := start; i <= s.lastKV; i++ {
			f.lines[i].dropOnReplace = true
		}
	}
	return f, nil
}

// classify reads one line the way wg(8) does: "#" starts a comment anywhere,
// section names are case-insensitive and may contain white space. It returns
// a message when the line is invalid; the message never quotes the line,
// which may hold a key.
func classify(raw string) (token, string) {
	text := strings.TrimSuffix(raw, "\n")
	text = strings.TrimSuffix(text, "\r")
	trimmed := trimSpace(text)
	if id, ok := markerID(trimmed); ok {
		return token{kind: kindMarker, id: id}, ""
	}
	content := text
	if i := strings.IndexByte(content, '#'); i >= 0 {
		content = content[:i]
	}
	content = trimSpace(content)
	switch {
	case content == "" && trimmed == "":
		return token{kind: kindBlank}, ""
	case content == "":
		return token{kind: kindComment}, ""
	case content[0] == '[':
		switch header := removeSpace(content); {
		case strings.EqualFold(header, "[Interface]"):
			return token{kind: kindInterface}, ""
		case strings.EqualFold(header, "[Peer]"):
			return token{kind: kindPeer}, ""
		}
		return token{}, "unknown section header (want [Interface] or [Peer])"
	}
	key, value, ok := strings.Cut(content, "=")
	if !ok {
		return token{}, `line is not a [Section], a "Key = Value" pair or a comment`
	}
	key = trimSpace(key)
	value = trimSpace(value)
	if key == "" {
		return token{}, `missing key before "="`
	}
	if strings.ContainsAny(key, asciiSpace+"[]") || !isPrintableASCII(key) {
		// Not quoted: a line such as "PrivateKey <key>" lands here.
		return token{}, "invalid key: white space, brackets or control characters before \"=\""
	}
	return token{kind: kindKeyValue, key: key, value: value}, ""
}

func markerID(trimmed string) (string, bool) {
	rest, ok := strings.CutPrefix(trimmed, markerPrefix)
	if !ok {
		return "", false
	}
	id := trimSpace(rest)
	if checkID(id) != nil {
		return "", false
	}
	return id, true
}

// parse decodes entries into ifc, adding to what earlier [Interface]
// sections set.
func (ifc *Interface) parse(entries []KeyValue) error {
	for _, kv := range entries {
		var err error
		switch k := kv.Key; {
		case strings.EqualFold(k, "PrivateKey"):
			err = checkKey(kv.Value)
			ifc.PrivateKey = kv.Value
		case strings.EqualFold(k, "ListenPort"):
			ifc.ListenPort, err = parseUint16(kv.Value)
		case strings.EqualFold(k, "FwMark"):
			ifc.FwMark, err = parseFwMark(kv.Value)
		case strings.EqualFold(k, "Address"):
			ifc.Addresses, err = appendPrefixes(ifc.Addresses, kv.Value)
		case strings.EqualFold(k, "DNS"):
			ifc.DNS, err = appendList(ifc.DNS, kv.Value)
		case strings.EqualFold(k, "MTU"):
			ifc.MTU, err = parseUint16(kv.Value)
		case strings.EqualFold(k, "Table"):
			ifc.Table = kv.Value
		case strings.EqualFold(k, "SaveConfig"):
			ifc.SaveConfig, err = parseBool(kv.Value)
		case strings.EqualFold(k, "PreUp"):
			ifc.PreUp = append(ifc.PreUp, kv.Value)
		case strings.EqualFold(k, "PostUp"):
			ifc.PostUp = append(ifc.PostUp, kv.Value)
		case strings.EqualFold(k, "PreDown"):
			ifc.PreDown = append(ifc.PreDown, kv.Value)
		case strings.EqualFold(k, "PostDown"):
			ifc.PostDown = append(ifc.PostDown, kv.Value)
		}
		if err != nil {
			return &ParseError{Line: kv.Line, Msg: fmt.Sprintf("invalid %s: %v", kv.Key, err)}
		}
	}
	return nil
}

// parsePeerEntries decodes the keys wg(8) knows in a [Peer] section. As in
// wg, a repeated single-valued key overrides the earlier one and repeated
// AllowedIPs lines add up.
func parsePeerEntries(s section) (Peer, error) {
	var p Peer
	for _, kv := range s.entries {
		var err error
		switch k := kv.Key; {
		case strings.EqualFold(k, "PublicKey"):
			err = checkKey(kv.Value)
			p.PublicKey = kv.Value
		case strings.EqualFold(k, "PresharedKey"):
			err = checkKey(kv.Value)
			p.PresharedKey = kv.Value
		case strings.EqualFold(k, "AllowedIPs"):
			p.AllowedIPs, err = appendPrefixes(p.AllowedIPs, kv.Value)
		case strings.EqualFold(k, "Endpoint"):
			err = checkEndpoint(kv.Value)
			p.Endpoint = kv.Value
		case strings.EqualFold(k, "PersistentKeepalive"):
			if kv.Value == "off" {
				p.PersistentKeepalive = 0
			} else {
				p.PersistentKeepalive, err = parseUint16(kv.Value)
			}
		}
		if err != nil {
			return Peer{}, &ParseError{Line: kv.Line, Msg: fmt.Sprintf("invalid %s: %v", kv.Key, err)}
		}
	}
	if p.PublicKey == "" {
		return Peer{}, &ParseError{Line: s.header + 1, Msg: "[Peer] section has no PublicKey"}
	}
	return p, nil
}

// Interface returns the [Interface] section and whether the file has one.
func (f *File) Interface() (Interface, bool) {
	ifc := f.iface
	ifc.Addresses = slices.Clone(ifc.Addresses)
	ifc.DNS = slices.Clone(ifc.DNS)
	ifc.PreUp = slices.Clone(ifc.PreUp)
	ifc.PostUp = slices.Clone(ifc.PostUp)
	ifc.PreDown = slices.Clone(ifc.PreDown)
	ifc.PostDown = slices.Clone(ifc.PostDown)
	ifc.Entries = slices.Clone(ifc.Entries)
	return ifc, f.hasIface
}

// UnmanagedPeers returns the hand-made [Peer] sections in file order.
func (f *File) UnmanagedPeers() []UnmanagedPeer {
	out := make([]UnmanagedPeer, len(f.unmanaged))
	for i, p := range f.unmanaged {
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		p.Entries = slices.Clone(p.Entries)
		out[i] = p
	}
	return out
}

// ManagedPeers returns the managed peers: in file order as parsed (by ID for
// files wgbot wrote), sorted by ID after SetManagedPeers. A file edited by
// hand may hold the same ID twice.
func (f *File) ManagedPeers() []Peer {
	out := make([]Peer, len(f.managed))
	for i, p := range f.managed {
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		out[i] = p
	}
	return out
}

// NumManaged is how many managed peers the file holds.
func (f *File) NumManaged() int { return len(f.managed) }

// SetManagedPeers replaces every managed peer with peers. Render then drops
// the old managed blocks wherever they were and writes peers, sorted by ID, as
// one block at the end of the file. It refuses invalid peers, duplicate IDs
// or public keys, and a public key a hand-made peer already uses (wg would
// merge the two peers); the File is unchanged then.
func (f *File) SetManagedPeers(peers []Peer) error {
	// Each key's owner: a peer's index, or -1-i for the hand-made peer i.
	// The message naming it is built only for an error: at 50,000 peers a
	// string per peer was a megabyte on every full reconcile.
	keys := make(map[wgtypes.Key]int, len(peers)+len(f.unmanaged))
	for i, u := range f.unmanaged {
		keys[decodeKey(u.PublicKey)] = -1 - i
	}
	out := make([]Peer, len(peers))
	for i, p := range peers {
		if err := p.validate(); err != nil {
			return err
		}
		k := decodeKey(p.PublicKey)
		if other, ok := keys[k]; ok {
			if other < 0 {
				return fmt.Errorf("peer %q: public key already used by the hand-made peer at line %d", p.ID, f.unmanaged[-1-other].Line)
			}
			if peers[other].ID == p.ID {
				return fmt.Errorf("peer %q: duplicate id", p.ID)
			}
			return fmt.Errorf("peer %q: public key already used by peer %q", p.ID, peers[other].ID)
		}
		keys[k] = i
		p.AllowedIPs = slices.Clone(p.AllowedIPs)
		if len(p.AllowedIPs) == 0 {
			p.AllowedIPs = nil
		}
		out[i] = p
	}
	slices.SortFunc(out, func(a, b Peer) int { return compareIDs(a.ID, b.ID) })
	// Sorted, two peers with one id are neighbours.
	for i := 1; i < len(out); i++ {
		if out[i].ID == out[i-1].ID {
			return fmt.Errorf("peer %q: duplicate id", out[i].ID)
		}
	}
	f.edited = f.edited || !f.replaced || !slices.EqualFunc(f.managed, out, Peer.equal)
	if !f.replaced {
		f.compact()
	}
	f.blocks = f.keepBlocks(out)
	f.managed = out
	f.replaced = true
	return nil
}

// keepBlocks returns the rendered blocks of out, sorted by ID, that f
// already holds for an equal peer, and "" for the others; those peers of
// out become f's own copies, whose keys are substrings of their blocks. A
// resync at 50,000 peers, where nothing changed, then renders nothing and
// keeps no second copy of the peers.
func (f *File) keepBlocks(out []Peer) []string {
	blocks := make([]string, len(out))
	if !f.replaced || len(f.blocks) != len(f.managed) {
		return blocks
	}
	j := 0
	for i := range out {
		for j < len(f.managed) && compareIDs(f.managed[j].ID, out[i].ID) < 0 {
			j++
		}
		if j < len(f.managed) && f.managed[j].equal(out[i]) {
			out[i], blocks[i] = f.managed[j], f.blocks[j]
		}
	}
	return blocks
}

// compact drops the parsed input and the lines of the managed blocks,
// which Render no longer writes, keeping a parse of only the lines it
// does: a File kept in memory (Cache) would otherwise hold the whole file
// twice, tens of megabytes at 50,000 peers. The hand-made peers' line
// numbers become those of the rendered file, where they come first.
func (f *File) compact() {
	g, err := Parse(f.unmanagedBytes())
	if err != nil {
		return // cannot happen: the kept lines of a valid file parse; keep f as it is
	}
	f.src, f.lines, f.iface, f.hasIface, f.unmanaged = g.src, g.lines, g.iface, g.hasIface, g.unmanaged
}

func (p Peer) equal(q Peer) bool {
	return p.ID == q.ID && p.PublicKey == q.PublicKey && p.PresharedKey == q.PresharedKey &&
		slices.Equal(p.AllowedIPs, q.AllowedIPs) && p.Endpoint == q.Endpoint && p.PersistentKeepalive == q.PersistentKeepalive
}

func (p Peer) validate() error {
	if err := checkID(p.ID); err != nil {
		return fmt.Errorf("peer id %q: %w", p.ID, err)
	}
	if err := checkKey(p.PublicKey); err != nil {
		return fmt.Errorf("peer %q: invalid PublicKey: %w", p.ID, err)
	}
	if p.PresharedKey != "" {
		if err := checkKey(p.PresharedKey); err != nil {
			return fmt.Errorf("peer %q: invalid PresharedKey: %w", p.ID, err)
		}
	}
	for _, pfx := range p.AllowedIPs {
		if !pfx.IsValid() {
			return fmt.Errorf("peer %q: invalid AllowedIPs entry %v", p.ID, pfx)
		}
	}
	if p.Endpoint != "" {
		if err := checkEndpoint(p.Endpoint); err != nil {
			return fmt.Errorf("peer %q: invalid Endpoint: %w", p.ID, err)
		}
	}
	if p.PersistentKeepalive < 0 || p.PersistentKeepalive > 65535 {
		return fmt.Errorf("peer %q: PersistentKeepalive %d out of range 0-65535", p.ID, p.PersistentKeepalive)
	}
	return nil
}

// Render returns the configuration. Until SetManagedPeers is called it is
// the parsed input byte for byte. After it, every line that is not wgbot's
// comes out unchanged and in order, followed by the managed peers sorted by
// ID, so equal peers always give equal bytes.
func (f *File) Render() []byte {
	if !f.replaced {
		return []byte(f.src)
	}
	var b bytes.Buffer
	b.Grow(len(f.src) + len(f.managed)*200)
	f.render(&b)
	return b.Bytes()
}

// renderWriter is a *bytes.Buffer, or a *bufio.Writer on the temp file
// when a Writer streams a large file instead of building it in memory.
type renderWriter interface {
	io.Writer
	io.StringWriter
	AvailableBuffer() []byte
}

// render writes what Render returns for a File whose managed peers were
// replaced.
func (f *File) render(w renderWriter) { f.image().writeFrom(w, 0) }

// renderEOL picks the line ending for the lines wgbot writes: that of the
// first line it keeps, so a CRLF file stays CRLF and the next parse of the
// output picks the same one.
func (f *File) renderEOL(kept []byte) string {
	if i := bytes.IndexByte(kept, '\n'); i >= 0 {
		return detectEOL(string(kept[:i+1]))
	}
	if bytes.HasSuffix(kept, []byte("\r")) {
		return "\r\n" // Render completes this line with "\n"
	}
	return f.eol
}

func (f *File) writeUnmanaged(b *bytes.Buffer) {
	for _, l := range f.lines {
		if !l.dropOnReplace {
			b.WriteString(l.raw)
		}
	}
}

// unmanagedBytes returns every line wgbot does not own, as Render keeps them.
func (f *File) unmanagedBytes() []byte {
	var b bytes.Buffer
	f.writeUnmanaged(&b)
	return b.Bytes()
}

func writePeer(b renderWriter, p Peer, eol string) {
	b.WriteString(markerPrefix)
	b.WriteString(p.ID)
	b.WriteString(eol)
	b.WriteString("[Peer]")
	b.WriteString(eol)
	b.WriteString("PublicKey = ")
	b.WriteString(p.PublicKey)
	b.WriteString(eol)
	if p.PresharedKey != "" {
		b.WriteString("PresharedKey = ")
		b.WriteString(p.PresharedKey)
		b.WriteString(eol)
	}
	if len(p.AllowedIPs) > 0 {
		b.WriteString("AllowedIPs = ")
		for i, pfx := range p.AllowedIPs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.Write(pfx.AppendTo(b.AvailableBuffer()))
		}
		b.WriteString(eol)
	}
	if p.Endpoint != "" {
		b.WriteString("Endpoint = ")
		b.WriteString(p.Endpoint)
		b.WriteString(eol)
	}
	if p.PersistentKeepalive > 0 {
		b.WriteString("PersistentKeepalive = ")
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(p.PersistentKeepalive), 10))
		b.WriteString(eol)
	}
}

// splitLines splits s after each "\n"; the last line may have no ending.
func splitLines(s string) []string {
	lines := make([]string, 0, strings.Count(s, "\n")+1)
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

// detectEOL returns the ending of the file's first line so that lines wgbot
// adds to a CRLF file are CRLF too.
func detectEOL(s string) string {
	if i := strings.IndexByte(s, '\n'); i > 0 && s[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// trimSpace is strings.TrimSpace for ASCII white space only, like wg(8).
func trimSpace(s string) string {
	for s != "" && isSpace(s[0]) {
		s = s[1:]
	}
	for s != "" && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func removeSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(asciiSpace, r) {
			return -1
		}
		return r
	}, s)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// PutManagedPeer adds p as a managed peer, or replaces the managed peer with
// p's ID, with the checks of SetManagedPeers; it leaves the other peers as
// they are, so an incremental change costs a copy, not a rebuild. The File
// is unchanged on error.
func (f *File) PutManagedPeer(p Peer) error {
	if !f.replaced {
		return f.SetManagedPeers(append(slices.DeleteFunc(f.ManagedPeers(), func(q Peer) bool { return q.ID == p.ID }), p))
	}
	if err := p.validate(); err != nil {
		return err
	}
	key := decodeKey(p.PublicKey)
	for _, u := range f.unmanaged {
		if decodeKey(u.PublicKey) == key {
			return fmt.Errorf("peer %q: public key already used by the hand-made peer at line %d", p.ID, u.Line)
		}
	}
	for _, q := range f.managed {
		if q.ID != p.ID && q.PublicKey == p.PublicKey {
			return fmt.Errorf("peer %q: public key already used by peer %q", p.ID, q.ID)
		}
	}
	p.AllowedIPs = slices.Clone(p.AllowedIPs)
	if len(p.AllowedIPs) == 0 {
		p.AllowedIPs = nil
	}
	i, found := slices.BinarySearchFunc(f.managed, p.ID, func(q Peer, id string) int { return compareIDs(q.ID, id) })
	switch {
	case !found:
		f.managed = slices.Insert(f.managed, i, p)
		if len(f.blocks) == len(f.managed)-1 {
			f.blocks = slices.Insert(f.blocks, i, "")
		}
	case f.managed[i].equal(p):
		return nil
	default:
		f.managed[i] = p
		if i < len(f.blocks) {
			f.blocks[i] = ""
		}
	}
	f.edited = true
	return nil
}

// compareIDs orders managed peers by ID as numbers, when they are (wgbot's
// are the database's): shorter first, then byte by byte. A new peer, with
// the highest ID, then goes at the end of the file, and writing it rewrites
// only the tail: in string order ("10" before "9") it landed anywhere, and
// each issuance wrote half of a 10 MB file again.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// RemoveManagedPeer removes the managed peer with the given ID, if any.
func (f *File) RemoveManagedPeer(id string) {
	if !f.replaced {
		f.SetManagedPeers(slices.DeleteFunc(f.ManagedPeers(), func(q Peer) bool { return q.ID == id })) //nolint:errcheck // the peers were valid
		return
	}
	if i, found := slices.BinarySearchFunc(f.managed, id, func(q Peer, id string) int { return compareIDs(q.ID, id) }); found {
		f.managed = slices.Delete(f.managed, i, i+1)
		if len(f.blocks) == len(f.managed)+1 {
			f.blocks = slices.Delete(f.blocks, i, i+1)
		}
		f.edited = true
	}
}

// AdoptUnmanaged drops the hand-made [Peer] sections whose public key is in
// keys, with the comment lines right above each that stand apart from the
// section before (where an operator names the peer), because wgbot now manages those peers: they were imported
// into the database (`wgbot import`), and Render writes them as managed
// peers instead. It returns how many sections it dropped; the managed
// peers are kept as they are.
func (f *File) AdoptUnmanaged(keys map[string]bool) int {
	drop := map[int]bool{} // 0-based indexes into f.lines
	n := 0
	for _, u := range f.unmanaged {
		if !keys[u.PublicKey] {
			continue
		}
		n++
		header := u.Line - 1
		last := header
		for _, kv := range u.Entries {
			last = max(last, kv.Line-1)
		}
		for i := header; i <= last; i++ {
			drop[i] = true
		}
		// The comments right above name the peer only when they stand
		// apart from what precedes them: after a blank line, at the top
		// of the file or after a section dropped too. A comment touching
		// the previous section (a commented-out PostDown at the end of
		// [Interface]) is the operator's and stays.
		top := header
		for top > 0 && f.lineKind(top-1) == kindComment {
			top--
		}
		if top == 0 || f.lineKind(top-1) == kindBlank || drop[top-1] {
			for i := top; i < header; i++ {
				drop[i] = true
			}
		}
	}
	if n == 0 {
		return 0
	}
	var kept strings.Builder
	for i, l := range f.lines {
		if !drop[i] {
			kept.WriteString(l.raw)
		}
	}
	g, err := Parse([]byte(kept.String()))
	if err != nil {
		return 0 // cannot happen: whole sections of a valid file were dropped
	}
	if f.replaced {
		// The lines left are the hand-made part only (compact); the
		// managed peers live in f.managed.
		g.managed, g.replaced = f.managed, true
	}
	g.eol, g.edited = f.eol, true
	*f = *g
	return n
}

func (f *File) lineKind(i int) lineKind {
	tok, _ := classify(f.lines[i].raw)
	return tok.kind
}

// HasUnmanaged says whether a hand-made peer uses the public key.
func (f *File) HasUnmanaged(publicKey string) bool {
	for _, u := range f.unmanaged {
		if u.PublicKey == publicKey {
			return true
		}
	}
	return false
}
