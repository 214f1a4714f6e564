package tgtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// maxRequestBytes is Telegram's limit for files bots upload (50 MB), plus
// room for the other form fields.
const maxRequestBytes = 50<<20 + 1<<20

// errTooLarge marks a body over maxRequestBytes; Telegram answers 413.
var errTooLarge = errors.New("request entity too large")

// params holds one request's parameters the way Telegram sees them: every
// value is text (numbers and booleans as written, objects and arrays as JSON)
// whichever of the three encodings the client chose.
type params struct {
	values map[string]string
	files  map[string]upload
}

type upload struct {
	name        string
	contentType string
	data        []byte
}

// parseParams reads query-string parameters and then the body: JSON,
// urlencoded or multipart, chosen by Content-Type as Telegram does.
func parseParams(r *http.Request) (params, error) {
	p := params{values: map[string]string{}, files: map[string]upload{}}
	for k, vs := range r.URL.Query() {
		if len(vs) > 0 {
			p.values[k] = vs[0]
		}
	}
	if r.Body == nil {
		return p, nil
	}
	body := http.MaxBytesReader(nil, r.Body, maxRequestBytes)
	mediaType, mediaParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "application/json":
		raw, err := io.ReadAll(body)
		if err != nil {
			return p, bodyError(err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			return p, nil
		}
		if err := p.addJSON(raw); err != nil {
			return p, err
		}
	case "application/x-www-form-urlencoded":
		r.Body = body
		if err := r.ParseForm(); err != nil {
			return p, bodyError(err)
		}
		for k, vs := range r.PostForm {
			if len(vs) > 0 {
				p.values[k] = vs[0]
			}
		}
	case "multipart/form-data":
		if mediaParams["boundary"] == "" {
			return p, errors.New("multipart body without boundary")
		}
		r.Body = body
		// Files up to the limit stay in memory: tests want the bytes anyway.
		err := r.ParseMultipartForm(maxRequestBytes)
		if errors.Is(err, io.EOF) {
			// go-telegram sends an empty body for methods without
			// parameters; Telegram takes that as no parameters.
			return p, nil
		}
		if err != nil {
			return p, bodyError(err)
		}
		defer func() { _ = r.MultipartForm.RemoveAll() }()
		for k, vs := range r.MultipartForm.Value {
			if len(vs) > 0 {
				p.values[k] = vs[0]
			}
		}
		for k, fhs := range r.MultipartForm.File {
			if len(fhs) == 0 {
				continue
			}
			f, err := fhs[0].Open()
			if err != nil {
				return p, err
			}
			data, err := io.ReadAll(f)
			_ = f.Close()
			if err != nil {
				return p, bodyError(err)
			}
			p.files[k] = upload{name: fhs[0].Filename, contentType: fhs[0].Header.Get("Content-Type"), data: data}
		}
	}
	return p, nil
}

func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errTooLarge
	}
	return err
}

// addJSON flattens a JSON object body into text values. Strings are
// unquoted; anything else keeps its JSON text, so "reply_markup" reads the
// same whether it came as a JSON object or as a JSON-encoded form field.
func (p *params) addJSON(raw []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("can't parse JSON object: %w", err)
	}
	for k, v := range obj {
		v = bytes.TrimSpace(v)
		switch {
		case bytes.Equal(v, []byte("null")):
			continue
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			p.values[k] = s
		default:
			p.values[k] = string(v)
		}
	}
	return nil
}

func (p params) has(key string) bool {
	_, ok := p.values[key]
	return ok
}

func (p params) str(key string) string { return p.values[key] }

// int64 reads an integer; absent means 0. Telegram also accepts integers
// sent as JSON strings, which is what form encodings produce anyway.
func (p params) int64(key string) (int64, *apiError) {
	s := strings.TrimSpace(p.values[key])
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, badRequest("invalid " + key + " specified")
	}
	return n, nil
}

func (p params) int(key string) (int, *apiError) {
	n, apiErr := p.int64(key)
	return int(n), apiErr
}

func (p params) bool(key string) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(p.values[key]))
	return b
}

// decode parses a JSON-valued parameter such as reply_markup or prices.
func (p params) decode(key string, dst any) *apiError {
	s, ok := p.values[key]
	if !ok || strings.TrimSpace(s) == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return badRequest("can't parse " + key + " JSON object")
	}
	return nil
}
