package introspect

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestActive(t *testing.T) {
	p := newIdP(t, answer(active(t0.Add(time.Hour), `,"username":"alice@example.com","iss":"https://idp"`)))
	in, _ := newTest(t, p, Options{Audiences: []string{"api"}})
	res, err := in.Introspect(context.Background(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Active: true, Subject: "alice", ClientID: "app", Username: "alice@example.com",
		Issuer: "https://idp", Scopes: []string{"read", "write"}, Audience: []string{"api"}}
	got := *res
	if !got.Expiry.Equal(t0.Add(time.Hour)) || got.Raw["sub"] != "alice" {
		t.Fatalf("Expiry %v, Raw %v", got.Expiry, got.Raw)
	}
	got.Expiry, got.Raw = time.Time{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestInactive(t *testing.T) {
	for name, body := range map[string]string{
		"false":          `{"active":false}`,
		"string true":    `{"active":"true","sub":"alice"}`,
		"number":         `{"active":1}`,
		"missing":        `{"sub":"alice"}`,
		"null":           `{"active":null}`,
		"expired":        active(t0, ""),
		"refresh token":  active(t0.Add(time.Hour), `,"token_use":"refresh_token"`),
		"exp at zero":    `{"active":true,"exp":0}`,
		"inactive extra": `{"active":false,"exp":"garbage","aud":7}`,
	} {
		t.Run(name, func(t *testing.T) {
			in, _ := newTest(t, newIdP(t, answer(body)), Options{})
			if res, err := in.Introspect(context.Background(), testToken); err != ErrInactive || res != nil {
				t.Fatalf("got %+v, %v; want ErrInactive", res, err)
			}
		})
	}
}

func TestNoCallForEmptyOrHugeToken(t *testing.T) {
	p := newIdP(t, answer(active(time.Time{}, "")))
	in, _ := newTest(t, p, Options{})
	for _, tok := range []string{"", strings.Repeat("t", maxTokenLen+1)} {
		if _, err := in.Introspect(context.Background(), tok); err != ErrInactive {
			t.Fatalf("token of %d bytes: %v", len(tok), err)
		}
	}
	if n := p.requests.Load(); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

func TestAudience(t *testing.T) {
	for name, tc := range map[string]struct {
		aud  string
		want error
	}{
		"array match":    {`["x","api"]`, nil},
		"string match":   {`"api"`, nil},
		"array mismatch": {`["x","y"]`, ErrAudience},
		"string other":   {`"other"`, ErrAudience},
		"empty array":    {`[]`, ErrAudience},
		"absent":         {``, ErrAudience},
	} {
		t.Run(name, func(t *testing.T) {
			body := `{"active":true}`
			if tc.aud != "" {
				body = `{"active":true,"aud":` + tc.aud + `}`
			}
			in, _ := newTest(t, newIdP(t, answer(body)), Options{Audiences: []string{"api", "admin"}})
			if _, err := in.Introspect(context.Background(), testToken); err != tc.want {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// The request is RFC 7662's, with client_secret_basic credentials
// form-url-encoded before base64 (RFC 6749 section 2.3.1).
func TestRequest(t *testing.T) {
	const id, secret = "client:id é", "p@ss w%rd+&=/:"
	seen := make(chan *http.Request, 1)
	p := newIdP(t, func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		seen <- r
		answer(`{"active":false}`)(w, r)
	})
	in, _ := newTest(t, p, Options{ClientID: id, ClientSecret: secret})
	tok := testToken + "+/= é"
	in.Introspect(context.Background(), tok)
	r := <-seen
	if r.Method != http.MethodPost || r.URL.Path != "/oauth2/introspect" ||
		r.Header.Get("Accept") != "application/json" ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Fatalf("request %s %s, headers %v", r.Method, r.URL, r.Header)
	}
	if !reflect.DeepEqual(r.PostForm, url.Values{"token": {tok}, "token_type_hint": {"access_token"}}) {
		t.Fatalf("form %v", r.PostForm)
	}
	cred, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
	if want := "client%3Aid+%C3%A9:p%40ss+w%25rd%2B%26%3D%2F%3A"; string(cred) != want {
		t.Fatalf("credentials %q, want %q", cred, want)
	}
	u, s, _ := r.BasicAuth()
	if u, _ = url.QueryUnescape(u); u != id {
		t.Fatalf("id %q", u)
	}
	if s, _ = url.QueryUnescape(s); s != secret {
		t.Fatalf("secret %q", s)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := Options{Endpoint: "https://idp/introspect", ClientID: "a", ClientSecret: "b"}
	for name, edit := range map[string]func(*Options){
		"no endpoint":     func(o *Options) { o.Endpoint = "" },
		"relative":        func(o *Options) { o.Endpoint = "/introspect" },
		"ftp":             func(o *Options) { o.Endpoint = "ftp://idp/x" },
		"user info":       func(o *Options) { o.Endpoint = "https://a:b@idp/x" },
		"no client id":    func(o *Options) { o.ClientID = "" },
		"no secret":       func(o *Options) { o.ClientSecret = "" },
		"negative ttl":    func(o *Options) { o.InactiveTTL = -1 },
		"negative max":    func(o *Options) { o.MaxEntries = -1 },
		"negative expiry": func(o *Options) { o.CacheMax = -time.Second },
	} {
		o := ok
		edit(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	in, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if in.o.CacheMax != 5*time.Minute || in.o.InactiveTTL != 10*time.Second ||
		in.o.Timeout != 2*time.Second || in.o.MaxEntries != 10_000 {
		t.Fatalf("defaults %+v", in.o)
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	for _, err := range []error{ErrInactive, ErrAudience} {
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("%v is ErrUnavailable", err)
		}
	}
}
