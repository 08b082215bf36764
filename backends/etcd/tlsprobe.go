package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
)

// http2Preface is what a gRPC client sends first on a connection: the HTTP/2
// connection preface and an empty SETTINGS frame. The server answers with its
// own SETTINGS frame, or, if it refused the client's certificate, with a TLS
// alert.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"

// errTLSRefused marks a TLS setup that cannot work with a member: it refused
// our certificate, or we do not trust its certificate. Retrying does not help.
var errTLSRefused = errors.New("TLS refused")

// probeTLS checks, before the etcd client dials, that the TLS setup works with
// the https members: etcd's client retries a refused handshake until its
// deadline and reports only "context deadline exceeded". probeTLS returns nil
// as soon as one member completes a handshake and answers the preface, or
// when a member is not probed (http); an error wrapping errTLSRefused when
// every member refused or was not trusted and at least one did so; otherwise
// (members down or silent until ctx ends) nil, leaving the diagnosis to the
// dial.
func probeTLS(ctx context.Context, cfg ClientConfig, tc *tls.Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	members := make([]*url.URL, 0, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" {
			return nil
		}
		members = append(members, u)
	}
	results := make(chan error, len(members))
	var wg sync.WaitGroup
	for _, u := range members {
		wg.Go(func() { results <- probeMember(ctx, cfg, tc, u) })
	}
	go func() { wg.Wait(); close(results) }()
	var refusals []error
	for err := range results {
		switch {
		case err == nil:
			cancel()
			wg.Wait()
			return nil
		case errors.Is(err, errTLSRefused):
			refusals = append(refusals, err)
		}
	}
	if len(refusals) == 0 {
		return nil
	}
	return errors.Join(refusals...)
}

// probeMember completes a TLS handshake with one member and the start of
// HTTP/2, and explains a failure that is the TLS setup's fault.
func probeMember(ctx context.Context, cfg ClientConfig, tc *tls.Config, u *url.URL) error {
	conf := tc.Clone()
	conf.NextProtos = []string{"h2"}
	if conf.ServerName == "" {
		conf.ServerName = u.Hostname()
	}
	dial := cfg.Dialer
	if dial == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
	}
	raw, err := dial(ctx, u.Host)
	if err != nil {
		return err
	}
	conn := tls.Client(raw, conf)
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	if err = conn.HandshakeContext(ctx); err == nil {
		if _, err = conn.Write([]byte(http2Preface)); err == nil {
			_, err = conn.Read(make([]byte, 1))
		}
	}
	if err == nil {
		return nil
	}
	return explainTLS(cfg, u, err)
}

// explainTLS names what failed: the server's certificate against the CA file,
// or this client's certificate as the server judged it.
func explainTLS(cfg ClientConfig, u *url.URL, err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		ca := "the system's CAs (no CA file set)"
		if cfg.CAFile != "" {
			ca = "CA file " + cfg.CAFile
		}
		return fmt.Errorf("%w: %s: the server's certificate is not trusted by %s: %w", errTLSRefused, u.Redacted(), ca, verr.Err)
	}
	var oerr *net.OpError
	if errors.As(err, &oerr) && oerr.Op == "remote error" {
		if cfg.CertFile == "" {
			return fmt.Errorf("%w: %s: the server refused the connection (it may require a client certificate; none is set): %w", errTLSRefused, u.Redacted(), err)
		}
		return fmt.Errorf("%w: %s: the server refused client certificate %s: %w", errTLSRefused, u.Redacted(), cfg.CertFile, err)
	}
	var herr tls.RecordHeaderError
	if errors.As(err, &herr) {
		return fmt.Errorf("%w: %s: the server does not speak TLS (use an http:// URL?): %w", errTLSRefused, u.Redacted(), err)
	}
	return err
}
