//go:build !netbsd

package kqueue

// NetBSD has neither EV_RECEIPT nor EV_DISPATCH; everywhere else the trace
// names them.
func init() {
	addFlagName(bit(EV_RECEIPT, "EV_RECEIPT"))
	addFlagName(bit(EV_DISPATCH, "EV_DISPATCH"))
}
