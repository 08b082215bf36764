package api

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/url"
)

// PageToken is fleet's page token: the page size it was made under and the
// page it asks for, counted from 1. On the wire it is the URL-safe base64,
// with padding, of the two as little-endian uint16s; page 1 is never sent, so
// the first token a listing returns is page 2 ("ZAACAA==" for limit 100).
type PageToken struct {
	Limit, Page uint16
}

// Encode returns the token's wire form.
func (t PageToken) Encode() string {
	var b [4]byte
	binary.LittleEndian.PutUint16(b[0:], t.Limit)
	binary.LittleEndian.PutUint16(b[2:], t.Page)
	return base64.URLEncoding.EncodeToString(b[:])
}

// DecodePageToken parses a token's wire form.
func DecodePageToken(s string) (PageToken, error) {
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		return PageToken{}, fmt.Errorf("invalid page token %q: %w", truncate(s, 64), err)
	}
	if len(b) != 4 {
		return PageToken{}, fmt.Errorf("invalid page token %q: %d bytes, want 4", truncate(s, 64), len(b))
	}
	return PageToken{Limit: binary.LittleEndian.Uint16(b[0:]), Page: binary.LittleEndian.Uint16(b[2:])}, nil
}

// pageToken reads the nextPageToken parameter of a listing whose page size is
// limit: page 1 if absent; a 400 if repeated, malformed, made under another
// limit, or for page 0.
func pageToken(q url.Values, limit int) (PageToken, *httpError) {
	values := q["nextPageToken"]
	switch len(values) {
	case 0:
		return PageToken{Limit: uint16(limit), Page: 1}, nil
	case 1:
	default:
		return PageToken{}, badRequest("too many values for page token")
	}
	tok, err := DecodePageToken(values[0])
	if err != nil {
		return PageToken{}, badRequest("%v", err)
	}
	if int(tok.Limit) != limit {
		return PageToken{}, badRequest("token limit must be %d", limit)
	}
	if tok.Page == 0 {
		return PageToken{}, badRequest("token page must be greater than zero")
	}
	return tok, nil
}

// page returns the items of all on tok's page, and the token of the next page
// if more items follow. Unlike fleet, a full last page has no next token, so a
// client never fetches an empty page when the total is a multiple of the page
// size.
func page[T any](all []T, tok PageToken) ([]T, string) {
	size := int(tok.Limit)
	start := (int(tok.Page) - 1) * size
	if start >= len(all) {
		return nil, ""
	}
	end := min(start+size, len(all))
	next := ""
	if end < len(all) && tok.Page < 0xffff {
		next = PageToken{Limit: tok.Limit, Page: tok.Page + 1}.Encode()
	}
	return all[start:end], next
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
