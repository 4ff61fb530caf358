package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what a verified token says: who holds it, until when, and
// which documents it may read or write.
type Claims struct {
	Subject string
	Expires time.Time
	Grants  []Grant
}

// Perm returns what the claims allow on doc: the union of every matching
// grant (0 if none matches).
func (c *Claims) Perm(doc string) Perm {
	var p Perm
	for _, g := range c.Grants {
		if p|g.Perm != p && g.Match(doc) {
			p |= g.Perm
		}
	}
	return p
}

// CanRead reports whether the holder may subscribe to doc.
func (c *Claims) CanRead(doc string) bool { return c.Perm(doc)&Read != 0 }

// CanWrite reports whether the holder may send changes to doc.
func (c *Claims) CanWrite(doc string) bool { return c.Perm(doc)&Write != 0 }

// Expired reports whether the token has run out at now.
func (c *Claims) Expired(now time.Time) bool { return !now.Before(c.Expires) }

// wireClaims is the JWT payload: the registered claims plus "allow".
type wireClaims struct {
	jwt.RegisteredClaims
	Allow []string `json:"allow,omitempty"`
}

// Errors Verify returns, for errors.Is. The error's text says more (which
// claim is missing, that the signature does not verify, …) and never
// repeats the token.
var (
	// ErrInvalidToken: not a token this server accepts (malformed, signed
	// with another key or algorithm, a claim missing or malformed).
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrTokenExpired: a token that verified but whose expiry has passed
	// (or that is not valid yet).
	ErrTokenExpired = errors.New("auth: token expired")
)

// MaxTokenLen bounds the tokens Verify looks at: far above a token with a
// few hundred grants, far below what would cost the server anything.
const MaxTokenLen = 16 << 10

// MaxSubjectLen bounds a token's subject, which the server logs and
// stores with every change the token's holder sends.
const MaxSubjectLen = 1024

// MinSecretLen is the shortest HMAC secret accepted: HS256's key should
// be as long as its hash (RFC 7518, section 3.2).
const MinSecretLen = 32

// Verifier checks tokens signed with one key. It is safe for concurrent
// use.
type Verifier struct {
	key     any      // []byte (HMAC) or ed25519.PublicKey
	methods []string // the algorithms accepted: never "none", never a mix of HMAC and EdDSA
	now     func() time.Time
}

// NewHMACVerifier accepts tokens signed with HMAC (HS256, HS384 or HS512)
// and secret, which must be at least MinSecretLen bytes.
func NewHMACVerifier(secret []byte) (*Verifier, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: an HMAC secret must be at least %d bytes; this one is %d", MinSecretLen, len(secret))
	}
	return &Verifier{key: append([]byte(nil), secret...), methods: []string{"HS256", "HS384", "HS512"}, now: time.Now}, nil
}

// NewEdDSAVerifier accepts tokens signed with the Ed25519 private key of
// pub (algorithm "EdDSA").
func NewEdDSAVerifier(pub ed25519.PublicKey) (*Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("auth: an Ed25519 public key is %d bytes; this one is %d", ed25519.PublicKeySize, len(pub))
	}
	return &Verifier{key: pub, methods: []string{"EdDSA"}, now: time.Now}, nil
}

// Algorithms lists the signing algorithms the verifier accepts.
func (v *Verifier) Algorithms() []string { return append([]string(nil), v.methods...) }

// Verify checks token's signature, algorithm and claims, and returns what
// it allows. The token must name a subject ("sub") and an expiry ("exp");
// each "allow" entry must be a grant (ParseGrant). Errors wrap
// ErrInvalidToken or ErrTokenExpired.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no token", ErrInvalidToken)
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrInvalidToken, len(token), MaxTokenLen)
	}
	var wc wireClaims
	_, err := jwt.ParseWithClaims(token, &wc, func(*jwt.Token) (any, error) { return v.key, nil },
		jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.now))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, fmt.Errorf("%w: %s", ErrTokenExpired, describe(err))
	case err != nil:
		return nil, fmt.Errorf("%w: %s", ErrInvalidToken, describe(err))
	}
	if wc.Subject == "" {
		return nil, fmt.Errorf("%w: no subject (sub)", ErrInvalidToken)
	}
	if len(wc.Subject) > MaxSubjectLen || !utf8.ValidString(wc.Subject) {
		return nil, fmt.Errorf("%w: the subject (sub) must be at most %d bytes of UTF-8", ErrInvalidToken, MaxSubjectLen)
	}
	c := &Claims{Subject: wc.Subject, Expires: wc.ExpiresAt.Time, Grants: make([]Grant, 0, len(wc.Allow))}
	for _, s := range wc.Allow {
		g, err := ParseGrant(s)
		if err != nil {
			return nil, fmt.Errorf("%w: allow: %v", ErrInvalidToken, err)
		}
		c.Grants = append(c.Grants, g)
	}
	return c, nil
}

// describe is the reason a token failed, in a few words: jwt's errors are
// chains such as "token has invalid claims: token is expired".
func describe(err error) string {
	for _, known := range []error{jwt.ErrTokenMalformed, jwt.ErrTokenSignatureInvalid, jwt.ErrTokenUnverifiable,
		jwt.ErrTokenExpired, jwt.ErrTokenNotValidYet, jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidClaims} {
		if errors.Is(err, known) {
			msg := known.Error()
			if errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method") {
				msg = "signed with an algorithm this server does not accept"
			}
			return msg
		}
	}
	return err.Error()
}

// Signer issues tokens. It is safe for concurrent use.
type Signer struct {
	method jwt.SigningMethod
	key    any
	now    func() time.Time
}

// NewHMACSigner issues tokens signed with HS256 and secret (at least
// MinSecretLen bytes).
func NewHMACSigner(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("auth: an HMAC secret must be at least %d bytes; this one is %d", MinSecretLen, len(secret))
	}
	return &Signer{method: jwt.SigningMethodHS256, key: append([]byte(nil), secret...), now: time.Now}, nil
}

// NewEdDSASigner issues tokens signed with an Ed25519 private key.
func NewEdDSASigner(priv ed25519.PrivateKey) (*Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("auth: an Ed25519 private key is %d bytes; this one is %d", ed25519.PrivateKeySize, len(priv))
	}
	return &Signer{method: jwt.SigningMethodEdDSA, key: priv, now: time.Now}, nil
}

// Issue returns a signed token carrying c (and the time it was issued).
// c must have a subject and an expiry.
func (s *Signer) Issue(c Claims) (string, error) {
	if c.Subject == "" || len(c.Subject) > MaxSubjectLen || !utf8.ValidString(c.Subject) {
		return "", fmt.Errorf("auth: a token needs a subject of 1 to %d bytes of UTF-8", MaxSubjectLen)
	}
	if c.Expires.IsZero() {
		return "", errors.New("auth: a token needs an expiry")
	}
	wc := wireClaims{RegisteredClaims: jwt.RegisteredClaims{
		Subject:   c.Subject,
		ExpiresAt: jwt.NewNumericDate(c.Expires),
		IssuedAt:  jwt.NewNumericDate(s.now()),
	}}
	for _, g := range c.Grants {
		if _, err := ParseGrant(g.String()); err != nil {
			return "", err
		}
		wc.Allow = append(wc.Allow, g.String())
	}
	return jwt.NewWithClaims(s.method, wc).SignedString(s.key)
}
