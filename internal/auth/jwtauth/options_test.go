package jwtauth

import (
	"testing"
	"time"
)

func TestNewVerifierRejectsBadOptions(t *testing.T) {
	ok := IssuerOptions{Issuer: testIssuer, JWKSURI: "https://issuer.example/jwks", Algorithms: []string{"RS256"}}
	for name, mod := range map[string]func(*IssuerOptions){
		"no issuer":            func(o *IssuerOptions) { o.Issuer = "" },
		"no algorithms":        func(o *IssuerOptions) { o.Algorithms = nil },
		"HS256":                func(o *IssuerOptions) { o.Algorithms = []string{"RS256", "HS256"} },
		"none":                 func(o *IssuerOptions) { o.Algorithms = []string{"none"} },
		"unknown alg":          func(o *IssuerOptions) { o.Algorithms = []string{"rs256"} },
		"relative JWKS URI":    func(o *IssuerOptions) { o.JWKSURI = "/jwks" },
		"file JWKS URI":        func(o *IssuerOptions) { o.JWKSURI = "file:///etc/jwks.json" },
		"discovery, not a URL": func(o *IssuerOptions) { o.JWKSURI, o.Issuer = "", "issuer" },
		"negative skew":        func(o *IssuerOptions) { o.ClockSkew = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			o := ok
			mod(&o)
			if v, err := NewVerifier(o); err == nil {
				v.Close()
				t.Fatal("accepted")
			}
		})
	}
	v, err := NewVerifier(ok)
	if err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	v.Close()
}

func TestDefaults(t *testing.T) {
	o, _, err := IssuerOptions{Issuer: testIssuer, JWKSURI: "https://x/jwks", Algorithms: []string{"ES256"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := o.Refresh
	if r.MinInterval != time.Minute || r.MaxInterval != time.Hour || r.UnknownKidInterval != 10*time.Second ||
		r.InitialBackoff != time.Second || r.MaxBackoff != time.Minute || r.MaxWait != 2*time.Second {
		t.Errorf("refresh defaults = %+v", r)
	}
	if o.Cache.MaxEntries != 10_000 || o.Cache.MaxTTL != 5*time.Minute {
		t.Errorf("cache defaults = %+v", o.Cache)
	}
}
