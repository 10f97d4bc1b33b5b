//go:build !netbsd

package kqueue

var receiptFlag = []flagCase{{EV_RECEIPT, "EV_RECEIPT"}, {EV_DISPATCH, "EV_DISPATCH"}}
