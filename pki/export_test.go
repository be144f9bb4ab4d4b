package pki

// WithoutNotifications makes a FileSource rely on polling alone, to test the
// fallback.
func WithoutNotifications() FileSourceOption {
	return func(o *fileSourceOptions) { o.noNotify = true }
}
