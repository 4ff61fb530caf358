package auth

import (
	"crypto/ed25519"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test")

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, doc string
		want         bool
	}{
		{"notes/a", "notes/a", true},
		{"notes/a", "notes/ab", false},
		{"notes/*", "notes/a", true},
		{"notes/*", "notes/", true},
		{"notes/*", "notes/a/b", false},
		{"notes/*", "notes", false},
		{"notes/*", "other/a", false},
		{"notes/**", "notes/a/b", true},
		{"notes/**", "notes/", true},
		{"notes/**", "notesx", false},
		{"**", "anything/at/all", true},
		{"*", "a/b", false},
		{"*", "plain", true},
		{"team-*/docs/*", "team-x/docs/a", true},
		{"team-*/docs/*", "team-x/y/docs/a", false},
		{"*.md", "readme.md", true},
		{"*.md", "dir/readme.md", false},
		{"**.md", "dir/readme.md", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a***b", "a/x/b", true}, // runs of stars are **
		{"user:1/*", "user:1/x", true},
		{"notes/../*", "notes/../x", true}, // no cleaning: IDs are matched as written
		{"notes/*", "notes/../secret/x", false},
	} {
		if got := match(c.pattern, c.doc); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.doc, got, c.want)
		}
	}
}

// TestMatchAgainstRegexp checks match against a regular expression built
// from the same pattern, on random patterns and IDs over a small alphabet
// (so that matches are frequent).
func TestMatchAgainstRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := "ab/*"
	gen := func(n int, alphabet string) string {
		var b strings.Builder
		for range rng.IntN(n) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	matches := 0
	for range 20000 {
		p, s := gen(8, alpha), gen(10, "ab/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch {
			case p[i] == '*' && i+1 < len(p) && p[i+1] == '*':
				for i+1 < len(p) && p[i+1] == '*' {
					i++
				}
				re.WriteString(".*")
			case p[i] == '*':
				re.WriteString("[^/]*")
			default:
				re.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		}
		re.WriteString("$")
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := match(p, s); got != want {
			t.Fatalf("match(%q, %q) = %v, regexp %s says %v", p, s, got, re.String(), want)
		}
		if want {
			matches++
		}
	}
	if matches < 1000 {
		t.Fatalf("only %d matches: the test is not exercising matches", matches)
	}
}

func TestMatchLongIsFast(t *testing.T) {
	// A pattern that makes backtracking matchers exponential.
	p := strings.Repeat("*a", 200) + "b"
	s := strings.Repeat("a", 1000)
	if match(p, s) {
		t.Fatal("matched")
	}
}

func TestParseGrant(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Grant
		err  bool
	}{
		{in: "notes/*:rw", want: Grant{"notes/*", ReadWrite}},
		{in: "public/**:r", want: Grant{"public/**", Read}},
		{in: "a:b:r", want: Grant{"a:b", Read}},
		{in: "notes/*", err: true},
		{in: "notes/*:w", err: true},
		{in: "notes/*:", err: true},
		{in: ":rw", err: true},
		{in: strings.Repeat("x", MaxPatternLen+1) + ":r", err: true},
	} {
		g, err := ParseGrant(c.in)
		if c.err {
			if !errors.Is(err, ErrBadGrant) {
				t.Errorf("ParseGrant(%q) = %v, %v; want ErrBadGrant", c.in, g, err)
			}
			continue
		}
		if err != nil || g != c.want {
			t.Errorf("ParseGrant(%q) = %v, %v; want %v", c.in, g, err, c.want)
		}
		if g.String() != c.in {
			t.Errorf("%v.String() = %q, want %q", g, g.String(), c.in)
		}
	}
}

func TestClaimsPerm(t *testing.T) {
	c := &Claims{Subject: "ann", Expires: time.Now().Add(time.Hour),
		Grants: []Grant{{"notes/*", ReadWrite}, {"public/**", Read}, {"public/wiki/*", ReadWrite}}}
	for _, x := range []struct {
		doc         string
		read, write bool
	}{
		{"notes/a", true, true},
		{"public/a/b", true, false},
		{"public/wiki/home", true, true}, // grants add up
		{"secret", false, false},
		{"notes/a/b", false, false},
	} {
		if c.CanRead(x.doc) != x.read || c.CanWrite(x.doc) != x.write {
			t.Errorf("%q: read %v write %v; want %v %v", x.doc, c.CanRead(x.doc), c.CanWrite(x.doc), x.read, x.write)
		}
	}
	now := time.Now()
	c.Expires = now
	if !c.Expired(now) || c.Expired(now.Add(-time.Second)) {
		t.Error("Expired is wrong at the boundary")
	}
}

func issue(t *testing.T, s *Signer, c Claims) string {
	t.Helper()
	tok, err := s.Issue(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyHMAC(t *testing.T) {
	s, err := NewHMACSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewHMACVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := issue(t, s, Claims{Subject: "ann", Expires: exp, Grants: []Grant{{"notes/*", ReadWrite}, {"public/**", Read}}})
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "ann" || !c.Expires.Equal(exp) || len(c.Grants) != 2 || c.Grants[1] != (Grant{"public/**", Read}) {
		t.Fatalf("claims %+v", c)
	}

	other, _ := NewHMACVerifier([]byte(strings.Repeat("z", 40)))
	if _, err := other.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("another secret: %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(tok[:len(tok)-3] + "AAA"); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("tampered signature: %v", err)
	}
	expired := issue(t, s, Claims{Subject: "ann", Expires: time.Now().Add(-time.Minute)})
	if _, err := v.Verify(expired); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("expired: %v, want ErrTokenExpired", err)
	}
	for name, tok := range map[string]string{
		"empty":     "",
		"garbage":   "not.a.token",
		"huge":      strings.Repeat("a", MaxTokenLen+1),
		"no exp":    sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ann"}),
		"no sub":    sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}),
		"long sub":  sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": strings.Repeat("s", MaxSubjectLen+1), "exp": time.Now().Add(time.Hour).Unix()}),
		"bad allow": sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix(), "allow": []string{"x:admin"}}),
		"allow not a list": sign(t, jwt.SigningMethodHS256, secret,
			jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix(), "allow": "x:rw"}),
		"alg none": sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
			jwt.MapClaims{"sub": "a", "exp": time.Now().Add(time.Hour).Unix(), "allow": []string{"**:rw"}}),
	} {
		_, err := v.Verify(tok)
		if !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
		if err != nil && len(tok) > 20 && strings.Contains(err.Error(), tok) {
			t.Errorf("%s: the error repeats the token", name)
		}
	}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyEdDSA(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubPEM, _ := MarshalPublicKey(pub)
	privPEM, _ := MarshalPrivateKey(priv)
	os.WriteFile(filepath.Join(dir, "pub.pem"), pubPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), privPEM, 0o600)
	pub2, err := ReadPublicKeyFile(filepath.Join(dir, "pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	priv2, err := ReadPrivateKeyFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPublicKeyFile(filepath.Join(dir, "key.pem")); err == nil {
		t.Error("a private key file read as a public key")
	}
	s, _ := NewEdDSASigner(priv2)
	v, err := NewEdDSAVerifier(pub2)
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, s, Claims{Subject: "svc", Expires: time.Now().Add(time.Hour), Grants: []Grant{{"**", Read}}})
	c, err := v.Verify(tok)
	if err != nil || c.Subject != "svc" || !c.CanRead("x/y") || c.CanWrite("x") {
		t.Fatalf("verify: %+v, %v", c, err)
	}
	// Algorithm confusion: an HMAC token whose secret is the public key's
	// bytes must not pass an EdDSA verifier.
	confused := sign(t, jwt.SigningMethodHS256, []byte(pub), jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := v.Verify(confused); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("HMAC token on an EdDSA verifier: %v", err)
	}
	hv, _ := NewHMACVerifier(secret)
	if _, err := hv.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("EdDSA token on an HMAC verifier: %v", err)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s")
	os.WriteFile(p, append(append([]byte(nil), secret...), '\n'), 0o600)
	b, err := ReadSecretFile(p)
	if err != nil || string(b) != string(secret) {
		t.Fatalf("%q, %v", b, err)
	}
	os.WriteFile(p, []byte("short\n"), 0o600)
	if _, err := ReadSecretFile(p); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := NewHMACVerifier([]byte("short")); err == nil {
		t.Error("NewHMACVerifier took a short secret")
	}
}
