# The learner's verbs. `make help` lists them. Only Go and standard tools.
#
# STAGE, FROM and TO are stage numbers (01, 02, ...); a stage is the directory
# whose name starts with its number, such as 02-kqueue-basic.

.PHONY: help run test check diff diffs cross ci

# Each verb is documented by its `## ` comment, which `make help` prints.
help: ## list the verbs
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /	/' | sort | \
		awk -F'\t' '{ printf "  make %-8s %s\n", $$1, $$2 }'
	@echo
	@echo "  STAGE, FROM, TO are stage numbers: make run STAGE=02, make diff FROM=01"

# The stage directory for a number: $(call stagedir,02) is 02-kqueue-basic.
stagedir = $(patsubst %/,%,$(firstword $(wildcard $(1)-*/)))

# Stops with a message unless variable $(1) is set, naming an example.
need = $(if $($(1)),,$(error set $(1), for example: make $@ $(1)=$(2)))

# Stops with a message unless stage $(1) exists.
exists = $(if $(call stagedir,$(1)),,$(error no stage $(1); the stages are $(wildcard [0-9][0-9]-*)))

run: ## run a stage: make run STAGE=02 [ARGS='-addr localhost:9000']
	$(call need,STAGE,02)
	$(call exists,$(STAGE))
	go run ./$(call stagedir,$(STAGE)) $(ARGS)

test: ## run every test, as the README says
	go test ./...

check: ## check your stage: make check STAGE=03 [DIR=work/03-connpool]
	$(call need,STAGE,03)
	WORKBOOK_STAGE=$(STAGE) WORKBOOK_DIR=$(or $(DIR),work/$(call stagedir,$(STAGE))) \
		go test -count=1 -parallel 8 -run TestStages .

# stagediff A B prints the unified diff from stage directory A to B, file by
# file, each headed by the stage's name (and no time stamps).
stagediff = stagediff() { \
	for f in $$( (ls -A "$$1"; ls -A "$$2") | sort -u); do \
		a="$$1/$$f"; b="$$2/$$f"; \
		[ -e "$$a" ] || a=/dev/null; [ -e "$$b" ] || b=/dev/null; \
		diff -u --label "$$1/$$f" --label "$$2/$$f" "$$a" "$$b"; \
		[ $$? -le 1 ] || return 2; \
	done; \
}

# The number after stage $(1): $(call next,01) is 02.
next = $(shell expr $(1) + 1 | awk '{ printf "%02d", $$1 }')

diff: ## show what a stage adds: make diff FROM=01 [TO=02, the next one]
	$(call need,FROM,01)
	@$(stagediff); \
	from=$(call stagedir,$(FROM)); to=$(call stagedir,$(or $(TO),$(call next,$(FROM)))); \
	test -n "$$from" || { echo "no stage $(FROM)" >&2; exit 2; }; \
	test -n "$$to" || { echo "no stage $(or $(TO),$(call next,$(FROM))) to compare $$from with" >&2; exit 2; }; \
	stagediff "$$from" "$$to"

diffs: ## show what every stage adds to the one before
	@$(stagediff); prev=; \
	for d in $(patsubst %/,%,$(wildcard [0-9][0-9]-*/)); do \
		if [ -n "$$prev" ]; then stagediff "$$prev" "$$d" || exit 2; fi; \
		prev=$$d; \
	done

cross: ## vet for every system the workbook runs on (macOS, the BSDs, Linux)
	bash .ci/run vet

ci: ## run what CI runs (.ci/run)
	bash .ci/run
