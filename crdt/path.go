package crdt

import (
	"strconv"
	"strings"
)

// PathElem is one step from a container to a child: a map key, or a list or
// text index when List is true.
type PathElem struct {
	Key   string
	Index int
	List  bool
}

// Key returns the path step for a map key; Index the step for a list index.
func Key(k string) PathElem { return PathElem{Key: k} }
func Index(i int) PathElem  { return PathElem{Index: i, List: true} }
func (e PathElem) String() string {
	if e.List {
		return strconv.Itoa(e.Index)
	}
	return e.Key
}

// Path is the way from the root to a value.
type Path []PathElem

// String formats the path as a JSON Pointer (RFC 6901): "" for the root,
// "/todo/0/title" for a value below it.
func (p Path) String() string {
	var b strings.Builder
	for _, e := range p {
		b.WriteByte('/')
		if e.List {
			b.WriteString(strconv.Itoa(e.Index))
			continue
		}
		b.WriteString(escapePointer(e.Key))
	}
	return b.String()
}

func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// ParsePointer splits a JSON Pointer (RFC 6901) into its unescaped reference
// tokens. Whether a token is a key or an index depends on the container it
// is applied to, so tokens are returned as strings.
func ParsePointer(ptr string) ([]string, error) {
	if ptr == "" {
		return nil, nil
	}
	if ptr[0] != '/' {
		return nil, &PathError{Pointer: ptr, Reason: "a JSON Pointer starts with '/'", Err: ErrNotFound}
	}
	parts := strings.Split(ptr[1:], "/")
	for i, p := range parts {
		if strings.Contains(p, "~") {
			for j := 0; j < len(p); j++ {
				if p[j] == '~' && (j+1 == len(p) || (p[j+1] != '0' && p[j+1] != '1')) {
					return nil, &PathError{Pointer: ptr, Reason: "'~' must be followed by 0 or 1", Err: ErrNotFound}
				}
			}
			parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(p)
		}
	}
	return parts, nil
}

func (p Path) append(e PathElem) Path {
	out := make(Path, len(p)+1)
	copy(out, p)
	out[len(p)] = e
	return out
}

// PathError says which part of a path could not be followed.
type PathError struct {
	Pointer string
	Reason  string
	Err     error
}

func (e *PathError) Error() string {
	return "crdt: path " + strconv.Quote(e.Pointer) + ": " + e.Reason
}

func (e *PathError) Unwrap() error { return e.Err }
