package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxDocBytes bounds a JWKS or discovery document read from the IdP.
const maxDocBytes = 1 << 20

// fetchKeySet fetches and parses the set, resolving the JWKS URI by
// discovery first when it is not configured. maxAge is the response's
// Cache-Control max-age, or MaxInterval without one.
func (v *Verifier) fetchKeySet(ctx context.Context) (set *keySet, maxAge time.Duration, err error) {
	uri := v.opts.JWKSURI
	if uri == "" {
		if uri, err = v.discover(ctx); err != nil {
			return nil, 0, err
		}
	}
	body, hdr, err := v.get(ctx, uri)
	if err == nil {
		set, err = parseKeySet(body, v.algs)
	}
	if err != nil {
		v.jwksURI = "" // rediscover next time: the IdP may have moved its keys
		return nil, 0, err
	}
	return set, cacheMaxAge(hdr, v.opts.Refresh.MaxInterval), nil
}

// get fetches a JSON document of at most maxDocBytes.
func (v *Verifier) get(ctx context.Context, uri string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: status %d", uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(body) > maxDocBytes {
		return nil, nil, errors.New("GET " + uri + ": document too large")
	}
	return body, resp.Header, nil
}

// cacheMaxAge reads max-age from Cache-Control; no-store and no-cache mean
// 0 (then clamped up to MinInterval); without either, def.
func cacheMaxAge(h http.Header, def time.Duration) time.Duration {
	for _, dir := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 {
				return time.Duration(min(n, int64(365*24*time.Hour/time.Second))) * time.Second
			}
		}
	}
	return def
}
