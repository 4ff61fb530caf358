package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Perm is what a grant allows on the documents it matches.
type Perm uint8

const (
	Read      Perm = 1 << iota // subscribe to the document and receive its changes
	Write                      // send changes to it
	ReadWrite = Read | Write
)

func (p Perm) String() string {
	switch p {
	case Read:
		return "r"
	case ReadWrite:
		return "rw"
	}
	return fmt.Sprintf("perm(%d)", uint8(p))
}

// Grant allows Perm on every document whose ID matches Pattern.
//
// Patterns match whole IDs. '*' matches any run of characters other than
// '/' (one path segment, or part of one); "**" matches any run of
// characters, '/' included. Every other character matches itself; there is
// no escaping, so a literal '*' in an ID is matched only by a wildcard.
// So "notes/*" matches "notes/a" but not "notes/a/b"; "notes/**" matches
// both (and "notes/"); "**" matches every document.
type Grant struct {
	Pattern string
	Perm    Perm
}

// ErrBadGrant is wrapped by ParseGrant's errors.
var ErrBadGrant = errors.New("auth: bad grant")

// MaxPatternLen bounds a grant's pattern: a document ID is at most 1,024
// bytes, and a longer pattern would only cost matching time.
const MaxPatternLen = 1024

// ParseGrant parses "PATTERN:PERM", where PERM is "r" or "rw". The pattern
// is everything before the last ':', so patterns may hold ':' themselves.
func ParseGrant(s string) (Grant, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return Grant{}, fmt.Errorf("%w %q: want PATTERN:r or PATTERN:rw", ErrBadGrant, s)
	}
	g := Grant{Pattern: s[:i]}
	switch s[i+1:] {
	case "r":
		g.Perm = Read
	case "rw":
		g.Perm = ReadWrite
	default:
		return Grant{}, fmt.Errorf("%w %q: permission %q is not r or rw", ErrBadGrant, s, s[i+1:])
	}
	if g.Pattern == "" {
		return Grant{}, fmt.Errorf("%w %q: empty pattern (use ** for every document)", ErrBadGrant, s)
	}
	if len(g.Pattern) > MaxPatternLen {
		return Grant{}, fmt.Errorf("%w: pattern of %d bytes (at most %d)", ErrBadGrant, len(g.Pattern), MaxPatternLen)
	}
	return g, nil
}

func (g Grant) String() string { return g.Pattern + ":" + g.Perm.String() }

// Match reports whether the grant's pattern matches the document ID.
func (g Grant) Match(doc string) bool { return match(g.Pattern, doc) }

// match reports whether pattern matches s whole. It runs in
// O(len(pattern)·len(s)) time whatever the pattern (no backtracking
// blow-up): the set of pattern positions reachable after each byte of s is
// kept as a bit set.
func match(pattern, s string) bool {
	// Tokenize: a literal byte, '*' (no slash) or "**" (anything).
	type tok struct {
		kind byte // 'l' literal, 's' star, 'a' any
		b    byte
	}
	toks := make([]tok, 0, len(pattern))
	for i := 0; i < len(pattern); i++ {
		switch {
		case pattern[i] == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			for i+1 < len(pattern) && pattern[i+1] == '*' {
				i++ // "***" is "**"
			}
			toks = append(toks, tok{kind: 'a'})
		case pattern[i] == '*':
			toks = append(toks, tok{kind: 's'})
		default:
			toks = append(toks, tok{kind: 'l', b: pattern[i]})
		}
	}
	n := len(toks)
	cur := make([]bool, n+1)
	next := make([]bool, n+1)
	// closure: a wildcard may match nothing, so reaching it reaches past it.
	closure := func(set []bool) {
		for i := 0; i < n; i++ {
			if set[i] && toks[i].kind != 'l' {
				set[i+1] = true
			}
		}
	}
	cur[0] = true
	closure(cur)
	for j := 0; j < len(s); j++ {
		c := s[j]
		clear(next)
		alive := false
		for i := 0; i < n; i++ {
			if !cur[i] {
				continue
			}
			switch t := toks[i]; t.kind {
			case 'l':
				if t.b == c {
					next[i+1] = true
					alive = true
				}
			case 's':
				if c != '/' {
					next[i] = true
					alive = true
				}
			case 'a':
				next[i] = true
				alive = true
			}
		}
		if !alive {
			return false
		}
		closure(next)
		cur, next = next, cur
	}
	return cur[n]
}
