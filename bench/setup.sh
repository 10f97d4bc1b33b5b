#!/usr/bin/env bash
# What the benchmark uses beyond Go, installed where this script can: perf(1),
# which counts system calls from the kernel's tracepoints (experiment 4). As
# root on Debian it installs linux-perf when perf is missing; anywhere else it
# says what is missing. The benchmark itself mounts tracefs, where the
# tracepoints are, when it is not mounted (that needs root too), and without
# perf it counts with strace and says so in its notes. So this never fails:
# nothing it installs is needed to run.
set -u

[ "$(uname -s)" = Linux ] || exit 0

if command -v perf >/dev/null; then
	echo "bench setup: perf is $(command -v perf)"
elif [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then
	echo "bench setup: installing linux-perf, for the system-call counts"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null && command -v perf >/dev/null; then
		echo "bench setup: perf is $(command -v perf)"
	else
		echo "bench setup: could not install linux-perf; system calls will be counted with strace"
	fi
else
	echo "bench setup: perf is missing (on Debian, as root: apt-get install linux-perf); system calls will be counted with strace"
fi
