package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/converge-sync/converge/auth"
)

const tokenSynopsis = `token issue (--secret-file F | --private-key-file F) --sub NAME --allow PATTERN:PERM [--allow ...] [--ttl D]

Prints a token for a converge server started with the matching
--auth-secret-file (HMAC) or --auth-public-key-file (EdDSA). PERM is r
(read) or rw (read and write); in PATTERN, * matches within one path
segment and ** across them: --allow 'notes/*:rw' --allow 'public/**:r'.
Clients send it with converge sync --token, or as Authorization: Bearer.`

func runToken(args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		return runTokenIssue([]string{"-h"}, stdout, stderr) // issue is the one token command: its usage, flags included
	case len(args) == 0:
		return fmt.Errorf("%w: name a token command: converge token issue ... (converge token -h lists its options)", errUsage)
	case args[0] != "issue":
		return fmt.Errorf("%w: unknown token command %q: the one there is is 'converge token issue' (converge token -h lists its options)", errUsage, args[0])
	}
	return inSubcommand("token issue", runTokenIssue(args[1:], stdout, stderr))
}

func runTokenIssue(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token issue", tokenSynopsis, stderr)
	secretFile := fs.String("secret-file", "", "sign with the HMAC secret in this file (HS256)")
	keyFile := fs.String("private-key-file", "", "sign with the Ed25519 private key in this PEM file (EdDSA)")
	sub := fs.String("sub", "", "the subject: who the token is for (recorded with every change it sends)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	var grants []auth.Grant
	fs.Func("allow", "PATTERN:r or PATTERN:rw, repeatable", func(s string) error {
		g, err := auth.ParseGrant(s)
		if err != nil {
			return err
		}
		grants = append(grants, g)
		return nil
	})
	if _, err := parseCommand(fs, args, 0, 0); err != nil {
		return err
	}
	if strings.TrimSpace(*sub) == "" {
		return fmt.Errorf("%w: --sub NAME is required", errUsage)
	}
	if *ttl <= 0 {
		return fmt.Errorf("%w: --ttl must be positive", errUsage)
	}
	if len(grants) == 0 {
		return fmt.Errorf("%w: at least one --allow PATTERN:PERM is required", errUsage)
	}
	var signer *auth.Signer
	switch {
	case (*secretFile == "") == (*keyFile == ""):
		return fmt.Errorf("%w: give one of --secret-file or --private-key-file", errUsage)
	case *secretFile != "":
		secret, err := auth.ReadSecretFile(*secretFile)
		if err != nil {
			return err
		}
		if signer, err = auth.NewHMACSigner(secret); err != nil {
			return err
		}
	default:
		key, err := auth.ReadPrivateKeyFile(*keyFile)
		if err != nil {
			return err
		}
		if signer, err = auth.NewEdDSASigner(key); err != nil {
			return err
		}
	}
	tok, err := signer.Issue(auth.Claims{Subject: *sub, Expires: time.Now().Add(*ttl), Grants: grants})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
