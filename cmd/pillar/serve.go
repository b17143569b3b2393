package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/pillar-db/pillar"
	"github.com/pillar-db/pillar/server"
)

// serveCmd serves the Prometheus, OTLP, Tempo and Loki HTTP APIs over the
// store in --dir (created if needed) until ctx is cancelled (SIGINT or
// SIGTERM), then finishes in-flight requests and closes the store.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "store directory, created if needed (required)")
	listen := fs.String("listen", "127.0.0.1:9201", "address to listen on")
	tokenFile := fs.String("auth-token-file", "", "file holding a bearer token every request must carry (default: no auth)")
	cert := fs.String("tls-cert", "", "TLS certificate file (with --tls-key: serve HTTPS)")
	key := fs.String("tls-key", "", "TLS private key file")
	maxBody := fs.Int64("max-body-bytes", 0, "largest request body as sent (default 32 MiB)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: pillar serve --dir D [--listen host:port] [--auth-token-file F] [--tls-cert C --tls-key K]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errNoDir
	}
	if (*cert == "") != (*key == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	opts := &server.Options{MaxBodyBytes: *maxBody}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("reading the auth token: %w", err)
		}
		if opts.AuthToken = strings.TrimSpace(string(b)); opts.AuthToken == "" {
			return fmt.Errorf("auth token file %s is empty", *tokenFile)
		}
	}
	db, err := pillar.Open(*dir, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	scheme := "http"
	if *cert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "pillar: serving %s on %s://%s\n", *dir, scheme, ln.Addr())
	err = server.Serve(ctx, ln, server.New(db, opts), &server.ServeOptions{TLSCertFile: *cert, TLSKeyFile: *key})
	err = errors.Join(err, db.Close())
	if err == nil {
		fmt.Fprintln(stdout, "pillar: stopped")
	}
	return err
}
