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
