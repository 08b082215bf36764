package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client defaults and limits.
const (
	// DefaultClientTimeout bounds one request when ClientConfig.Timeout is
	// zero. fleet's API client had no timeout at all.
	DefaultClientTimeout = 30 * time.Second
	// maxAnswerBytes bounds an answer body the client reads.
	maxAnswerBytes = 256 << 20
	// maxErrorBytes bounds an error body the client reads.
	maxErrorBytes = 64 << 10
	// maxPages bounds the pages one listing follows.
	maxPages = 1 << 16
)

// ClientConfig says how to reach a fleetd API.
type ClientConfig struct {
	// Endpoint is the API's URL, as fleetctl's --endpoint: unix:///path or
	// file:///path for a unix socket, http://host:port or https://host:port
	// (optionally with a path the API is mounted under). Of a comma-separated
	// list only the first entry is used, as by fleet.
	Endpoint string
	// TLS configures https endpoints; nil uses the system's roots.
	TLS *tls.Config
	// Timeout bounds each request, including reading its answer (each page
	// of a listing is one request); zero means DefaultClientTimeout.
	Timeout time.Duration
}

// Client calls a fleetd v1 API. It is safe for concurrent use; Close releases
// its idle connections.
type Client struct {
	hc   *http.Client
	base string // scheme://host/<mount>/fleet/v1
}

// NewClient checks cfg's endpoint with fleet's rules and returns a Client. A
// URL without a scheme is "URL scheme undefined"; a unix URL with a host
// (unix://var/run/fleet.sock, a missing slash) is "unable to connect to host
// ... with scheme ...".
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("api client: timeout %v is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultClientTimeout
	}
	raw, _, _ := strings.Cut(cfg.Endpoint, ",")
	ep, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if ep.Scheme == "" {
		return nil, errors.New("URL scheme undefined")
	}
	tr := &http.Transport{
		TLSClientConfig:     cfg.TLS,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	var base string
	switch ep.Scheme {
	case "unix", "file":
		if ep.Host != "" {
			return nil, fmt.Errorf("unable to connect to host %q with scheme %q", ep.Host, ep.Scheme)
		}
		if ep.Path == "" {
			return nil, fmt.Errorf("endpoint %q names no socket path", raw)
		}
		socket := ep.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
		base = "http://fleetd"
	case "http", "https":
		if ep.Host == "" {
			return nil, fmt.Errorf("endpoint %q names no host", raw)
		}
		tr.Proxy = http.ProxyFromEnvironment
		base = ep.Scheme + "://" + ep.Host + strings.TrimSuffix(ep.EscapedPath(), "/")
	default:
		return nil, fmt.Errorf("endpoint %q: unsupported scheme %q (want unix, file, http or https)", raw, ep.Scheme)
	}
	return &Client{hc: &http.Client{Transport: tr, Timeout: cfg.Timeout}, base: base + "/fleet/v1"}, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// call sends one request: method on path (below /fleet/v1, already escaped)
// with query, the JSON of body if not nil. A 2xx answer is decoded into out
// if not nil; any other is returned as an *Error.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	if query == nil {
		query = url.Values{}
	}
	query.Set("alt", "json")
	target := c.base + path + "?" + query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// answerError reads the *Error of a non-2xx answer: the HTTP status code
// with the message of fleet's error entity, or else (fleet's empty messages,
// or a body from something else) the status text or the body's start.
func answerError(resp *http.Response) *Error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if err != nil {
		return &Error{Code: resp.StatusCode, Message: fmt.Sprintf("%s (reading the error body: %v)", http.StatusText(resp.StatusCode), err)}
	}
	var body errorBody
	if json.Unmarshal(data, &body) == nil && body.Error != nil && body.Error.Message != "" {
		return &Error{Code: resp.StatusCode, Message: body.Error.Message}
	}
	msg := http.StatusText(resp.StatusCode)
	if t := strings.TrimSpace(string(data)); t != "" && body.Error == nil {
		msg = truncate(t, 200)
	}
	return &Error{Code: resp.StatusCode, Message: msg}
}
