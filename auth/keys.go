package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ReadSecretFile reads an HMAC secret: the file's bytes with surrounding
// whitespace (a trailing newline) removed, at least MinSecretLen of them.
// Any bytes do; the output of `openssl rand -base64 48` is a good secret.
func ReadSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretLen {
		return nil, fmt.Errorf("auth: secret file %s holds %d bytes; at least %d are needed", path, len(b), MinSecretLen)
	}
	return b, nil
}

// ReadPublicKeyFile reads an Ed25519 public key in PEM ("PUBLIC KEY",
// PKIX), as `openssl pkey -pubout` writes it.
func ReadPublicKeyFile(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("auth: %s holds a %T, not an Ed25519 public key", path, k)
	}
	return pub, nil
}

// ReadPrivateKeyFile reads an Ed25519 private key in PEM ("PRIVATE KEY",
// PKCS #8), as `openssl genpkey -algorithm ed25519` writes it.
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: %s holds a %T, not an Ed25519 private key", path, k)
	}
	return priv, nil
}

// MarshalPublicKey encodes an Ed25519 public key as ReadPublicKeyFile
// reads it.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalPrivateKey encodes an Ed25519 private key as ReadPrivateKeyFile
// reads it.
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading key: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("auth: %s holds no PEM block of type %q", path, typ)
		}
		if blk.Type == typ {
			return blk.Bytes, nil
		}
	}
}
