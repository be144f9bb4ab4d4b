package replica

// EncodeItem and DecodeMessage are for the tests of package replica_test,
// which sign items with package itemsig (itself importing replica).
var (
	EncodeItem    = encodeItem
	DecodeMessage = decodeMessage
)
