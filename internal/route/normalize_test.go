package route

import (
	"errors"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	cases := []struct {
		in, want string
		err      error
	}{
		{"/", "/", nil},
		{"/a/b", "/a/b", nil},
		{"/a/b/", "/a/b/", nil},
		{"/public/../admin", "/admin", nil},
		{"/public/%2e%2e/admin", "/admin", nil},
		{"/public/%2E%2E%2Fadmin", "/admin", nil},
		{"/public/%2e%2e%5cadmin", "/admin", nil},
		{"/a//b", "/a/b", nil},
		{"///a///b//", "/a/b/", nil},
		{"/a/./b", "/a/b", nil},
		{"/a/.", "/a/", nil},
		{"/a/..", "/", nil},
		{"/..", "/", nil},
		{"/../../a", "/a", nil},
		{"/a/b/../../../c", "/c", nil},
		{"/a\\b", "/a/b", nil},
		{"/a/%2fb", "/a/b", nil},
		{"/a%2e", "/a.", nil},
		{"/...", "/...", nil},
		{"/.a/..b/c..", "/.a/..b/c..", nil},
		{"/a%20b", "/a%20b", nil},
		{"/a%c3%a9", "/a%C3%A9", nil},
		{"/a%252e", "/a%252e", nil},
		{"/a%2a%2e", "/a%2A.", nil},
		{"/é", "/é", nil},
		{"/a/%zz", "", ErrPathEscape},
		{"/a/%2", "", ErrPathEscape},
		{"/a/%", "", ErrPathEscape},
		{"/a/%g0", "", ErrPathEscape},
		{"%00", "", ErrPathNotAbsolute},
		{"/a%00", "", ErrPathNUL},
		{"/a\x00b", "", ErrPathNUL},
		{"/a\nb", "", ErrPathControl},
		{"/a\x7f", "", ErrPathControl},
		{"", "", ErrPathNotAbsolute},
		{"a/b", "", ErrPathNotAbsolute},
	}
	for _, c := range cases {
		got, err := NormalizePath(c.in)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestNormalizePathFastPathNoAlloc(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/users/42", "/a%20b/c.d/", "/files/x..y"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePath(p) }); n != 0 {
			t.Errorf("%q: %v allocs", p, n)
		}
	}
}

// Forms RFC 3986 leaves alone but lenient backends read as traversal:
// dot segments with ';' parameters (Tomcat, Jetty: "..;x" is "..") and
// overlong UTF-8 ("%C0%AF" is "/" to some decoders).
func TestSuspiciousPath(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/a/..;/b", "dot segment with ';' parameters"},
		{"/a/..;jsessionid=x/b", "dot segment with ';' parameters"},
		{"/a/.;/b", "dot segment with ';' parameters"},
		{"/a/%2e%2e;/b", "dot segment with ';' parameters"},
		{"/a/%2E.;x", "dot segment with ';' parameters"},
		{"/a\\..;\\b", "dot segment with ';' parameters"},
		{"/a%2f..;%2fb", "dot segment with ';' parameters"},
		{"/x/%C0%AF", "overlong UTF-8"},
		{"/x/%c1%9c", "overlong UTF-8"},
		{"/x/%E0%80%AF", "overlong UTF-8"},
		{"/x/%f0%80%80%af", "overlong UTF-8"},
		// Fine: parameters elsewhere, dots inside names, real UTF-8, Latin-1.
		{"/a;v=1/b", ""},
		{"/a/b;c=..", ""},
		{"/a/...;/b", ""},
		{"/a/..x;/b", ""},
		{"/caf%C3%A9", ""},
		{"/caf%E9", ""},
		{"/x/%E0%A4%85", ""},
		{"/", ""},
	} {
		if got := SuspiciousPath(c.path); got != c.want {
			t.Errorf("SuspiciousPath(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}
