# The learner's verbs. `make help` lists them. Only Go and standard tools.
# The tests need no verb: go test ./... (or go test ./03-connpool).
#
# STAGE, FROM and TO are stage numbers (01, 02, ...); a stage is the directory
# whose name starts with its number, such as 02-kqueue-basic.

.PHONY: help run test start check watch diff diffs diffs-write cross bench bench-quick bench-record mutants ci

# make run TRACE=1 (or 2, or a file name) runs the stage with KQUEUE_TRACE set (kqueue/README.md, "Watch it").
run: export KQUEUE_TRACE := $(or $(TRACE),$(KQUEUE_TRACE))

# Each verb is documented by its `## ` comment, which `make help` prints.
help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /	/' | sort | \
		awk -F'\t' '{ printf "  make %-12s %s\n", $$1, $$2 }'
	@echo
	@echo "  STAGE, FROM, TO are stage numbers: make run STAGE=02, make diff FROM=01."
	@echo "  DIR is an exercise's directory, which make start prints. make check and"
	@echo "  make watch also take RUN=NAME (only the scripts whose names match NAME) and"
	@echo "  EXERCISE=NAME (a smaller exercise's own check); make check V=1 shows every"
	@echo "  session as well as the summary. Without make:"
	@echo "    go test ./03-connpool                    # the tests of stage 03"
	@echo "    cd work/03-connpool && go test           # your exercise, as stage 03"

# The stage directory for a number: $(call stagedir,02) is 02-kqueue-basic.
stagedir = $(patsubst %/,%,$(firstword $(wildcard $(1)-*/)))

# Stops with a message unless variable $(1) is set, naming an example.
need = $(if $($(1)),,$(error set $(1), for example: make $@ $(1)=$(2)))

# Stops with a message unless stage $(1) exists.
exists = $(if $(call stagedir,$(1)),,$(error no stage $(1); the stages are $(wildcard [0-9][0-9]-*)))

# run builds the stage into bin/ and then is the server (exec, no shell in
# between), instead of go run, which exits 1 after Ctrl-C and leaves the
# server running on kill. stdout is the server's alone, for its listening
# lines: make would echo each command there, so each is echoed to stderr
# instead. make passes a SIGTERM on to the server, but not a SIGINT, which
# Ctrl-C sends to both at once: make waits for the server and then ends
# itself by the signal, 130 in the shell (README.md, "Set-up", says so, and
# internal/harness's TestMakeRun checks it).
rundir = $(or $(DIR),$(call stagedir,$(STAGE)))
runbin = bin/$(subst /,-,$(patsubst /%,%,$(rundir)))
runbuild = cd $(rundir) && go build -o $(CURDIR)/$(runbin) .
runexec = exec $(runbin) $(ARGS)

run: ## run a stage: make run STAGE=02 (or DIR=...) [ARGS='-addr localhost:9000']
	$(if $(DIR),,$(call need,STAGE,02)$(call exists,$(STAGE)))
	@echo '$(runbuild)' >&2 && $(runbuild)
	@echo '$(runexec)' >&2 && $(runexec)

test: ## run every test, as the README says (one line per stage)
	go test ./...

# An exercise is a directory of its own, by default work/NN-name: make start
# copies the stage before into it (FROM=NN copies another), or refuses if it
# is already there.
start: ## start an exercise: make start STAGE=03 [FROM=03 DIR=work/03-mine]
	$(call need,STAGE,03)
	@go run ./internal/cmd/start $(if $(FROM),-from $(FROM)) $(if $(DIR),-dir $(DIR)) $(STAGE)

# check runs go test in the exercise's directory: its stage_test.go, copied
# by make start, runs the scripts of stage STAGE and of every stage before
# it (internal/harness). It runs it through internal/cmd/check, built into
# bin/, which writes go test's whole log to DIR/check.log and shows only the
# summary: which behaviours pass, and what the first one that fails
# expected. watch does the same again after every save, until Ctrl-C. Both
# take RUN and EXERCISE; check also V=1, which shows the log as well.
checkdir = $(or $(DIR),work/$(call stagedir,$(STAGE)))
checkargs = $(if $(EXERCISE), -exercise $(EXERCISE))$(if $(RUN), -run '$(RUN)') $(STAGE) $(checkdir)
checkbin = go build -o bin/check ./internal/cmd/check && exec bin/check

check: ## check your exercise: make check STAGE=03 [DIR=work/03-connpool]
	$(call need,STAGE,03)
	$(call exists,$(STAGE))
	@$(checkbin)$(if $(V), -v)$(checkargs)

watch: ## check it again after every save: make watch STAGE=03 [DIR=...]
	$(call need,STAGE,03)
	$(call exists,$(STAGE))
	@$(checkbin) -watch$(checkargs)

# The diffs: scripts/diffs prints them (only the Go code, each file headed by
# its stage's name); diffs/ holds them for reading on the code host, linked
# from the README's stage table, and .ci/run checks that it is up to date.

# The number after stage $(1): $(call next,01) is 02.
next = $(shell expr $(1) + 1 | awk '{ printf "%02d", $$1 }')

diff: ## show what a stage adds: make diff FROM=01 [TO=02, the next one]
	$(call need,FROM,01)
	@bash scripts/diffs $(FROM) $(or $(TO),$(call next,$(FROM)))

diffs: ## show what every stage adds to the one before
	@bash scripts/diffs

diffs-write: ## write them into diffs/ for the README's links (commit the result)
	bash scripts/diffs -w diffs

cross: ## vet for every system the workbook runs on (macOS, the BSDs, Linux)
	bash .ci/run vet

# A bench run writes into bench/runs/, which git ignores; only bench-record
# replaces the committed bench/results/ that bench/README.md quotes.
bench: ## measure the servers side by side, about 15 minutes (see bench/README.md)
	$(MAKE) -C bench bench

bench-quick: ## the same measurements, small and under a minute (no figures to quote)
	$(MAKE) -C bench quick

bench-record: ## the full run, written over the committed bench/results/ (maintainers)
	$(MAKE) -C bench record

# The site: the workbook as web pages, built by site/ (a module of its own,
# like bench/) from the READMEs, the stages' code and scripts/diffs.
.PHONY: site
site: ## build the site into _site/ (then open _site/index.html in a browser)
	cd site && go run . -out ../_site

# Mutation testing is for maintainers: it takes the better part of an hour
# for everything, so it is not part of .ci/run. PKG narrows it.
mutants: ## mutation scores of kqueue/ and the stages: make mutants [PKG='kqueue 03']
	bash scripts/mutants $(PKG)

ci: ## run what CI runs (.ci/run)
	bash .ci/run
