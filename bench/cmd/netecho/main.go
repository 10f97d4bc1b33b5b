// Command netecho is a peer echo server for the benchmark; see package peer.
package main

import "github.com/kqueue-workbook/workbook/bench/internal/peer"

func main() { peer.Main("netecho", peer.StartNet) }
