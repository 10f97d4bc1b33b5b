package harness

import "github.com/rogpeppe/go-internal/testscript"

// commands is every command the scripts can use besides testscript's own
// (exec, stdout, stderr, cmp, skip, ...): one entry per name, in one place,
// sorted by name (keep it sorted; TestCommandsSorted checks). Each command is
// documented at the top of the file that implements it:
//
//	commands_server.go   the server: serve, listening, signal, log
//	commands_clients.go  clients: connect, send, expect, shut, reset, ...
//	commands_slow.go     slow readers and memory (stage 07)
//	commands_split.go    CPU time and trickling clients (stages 07, 08)
//	commands_stages.go   a stuck server, interruptions, descriptors (01-06)
//	commands_faults.go   failures on purpose: strace's injections, a jammed log
//	commands_trace.go    KQUEUE_TRACE (02 on)
//	commands_multi.go    several loops (11 on)
//	check.go             the exercises' own checks
//
// A command that wraps another says so here, where it is registered.
var commands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"allbytes":  cmdAllbytes,
	"awaitread": cmdAwaitread,
	"close":     cmdClose,
	"connect":   cmdConnect,
	"cpu":       cmdCPU,
	"crowd":     cmdCrowd,
	"eof":       cmdEOF,
	"exits":     cmdExits,
	"expect":    cmdExpect,
	"expectgen": cmdExpectgen,
	"flushed":   cmdFlushed,
	"freeze":    cmdFreeze,
	"gone":      cmdGone,
	"idle":      cmdIdle,
	"inorder":   cmdInorder,
	"interrupt": cmdInterrupt,
	"kevents":   cmdKevents,
	"listening": cmdListening,
	"log":       cmdLog,
	"logjam":    cmdLogjam,
	"nofile":    cmdNofile,
	"pause":     cmdPause,
	"quiet":     cmdQuiet,
	"refused":   cmdRefused,
	"reset":     cmdReset,
	"rss":       cmdRSS,
	"send":      cmdSend,
	"sendgen":   cmdSendgen,
	// serve, with -loops from WORKBOOK_LOOPS in front of the script's own
	// flags for the stages with several loops (commands_multi.go).
	"serve":    withLoops(cmdServe),
	"shut":     cmdShut,
	"signal":   cmdSignal,
	"slowread": cmdSlowread,
	"strace":   cmdStrace,
	"stuck":    cmdStuck,
	"swarm":    cmdSwarm,
	"tracing":  cmdTracing,
	"trickle":  cmdTrickle,
}
