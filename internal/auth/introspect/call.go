package introspect

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxBody bounds a response: introspection answers are a few hundred
// bytes, and a larger one is a misbehaving server, not a token.
const maxBody = 1 << 20

// fetch asks the server about token. Every error wraps ErrUnavailable.
func (i *Introspector) fetch(token string) (*Result, error) {
	ctx, cancel := context.WithTimeout(i.ctx, i.o.Timeout)
	defer cancel()
	form := "token=" + url.QueryEscape(token) + "&token_type_hint=access_token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.o.Endpoint, strings.NewReader(form))
	if err != nil {
		return nil, unavailable("%w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", i.authz)
	resp, err := i.client.Do(req)
	if err != nil {
		return nil, unavailable("%w", err) // a *url.Error: the endpoint, not the body
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable("status %d from %s", resp.StatusCode, i.o.Endpoint)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		return nil, unavailable("reading response: %w", err)
	case len(body) > maxBody:
		return nil, unavailable("response larger than %d bytes", maxBody)
	}
	res, err := decode(body)
	if err != nil {
		return nil, unavailable("%w", err)
	}
	return res, nil
}
