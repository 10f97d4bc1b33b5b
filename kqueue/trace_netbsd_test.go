package kqueue

var receiptFlag []flagCase // NetBSD has no EV_RECEIPT or EV_DISPATCH
