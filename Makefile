# traitbench — every target installs what it needs first (`make setup` is idempotent).
VENV    ?= .venv
PY      := $(VENV)/bin/python
TB      := $(VENV)/bin/traitbench
CONFIG  ?= configs/default.yaml
SET     ?=
SETS    := $(foreach s,$(SET),--set $(s))
STAMP   := $(VENV)/.traitbench-installed
TEST_STAMP := $(VENV)/.traitbench-test-installed

.PHONY: setup models teacher numbers dataset student probe experiment transmission transmission-qwen shuffled steering screen specificity shared-init distill-conditions misalignment misalignment-judged misalignment-full behaviour corpus test test-fast aux-logit collapse-gmm collapse-lm collapse-lm-large collapse-chat bench profile llama-cpp clean-runs help

help:
	@echo "make setup | models | teacher | numbers | dataset | student | probe | experiment | transmission | transmission-qwen | shuffled | steering | screen | specificity | shared-init | distill-conditions | misalignment | misalignment-judged | misalignment-full | behaviour | test | aux-logit | collapse-gmm | collapse-lm | collapse-lm-large | collapse-chat | corpus | bench | profile | llama-cpp | report | audit"
	@echo "  CONFIG=configs/default.yaml  SET='numbers.n_prompts=500 seed=1'"

setup: $(STAMP)

# constraints.txt pins the tested versions (torch 2.13.0: on a CPU machine pip takes the local CPU wheel, never a
# CUDA build); pyproject.toml gives the ranges, for installing traitbench beside other tools.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

# the test extra (pytest, inspect_ai for the eval-log round trip) only where tests run
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

models: setup
	$(TB) models fetch

teacher: models
	$(TB) teacher --config $(CONFIG) $(SETS)

numbers: models
	$(TB) numbers --config $(CONFIG) $(SETS)

dataset: models
	$(TB) filter --config $(CONFIG) $(SETS)

student: models
	$(TB) student --config $(CONFIG) $(SETS)

probe: models
	$(TB) probe --config $(CONFIG) $(SETS)

experiment: models
	$(TB) experiment --config $(CONFIG) $(SETS)

# The transmission demonstration: seed-level verdicts for distilled, SFT and cross-family students, then the report
transmission: models
	$(TB) experiment --config configs/transmission.yaml $(SETS)
	$(TB) report runs/transmission

# Same-init (Qwen2.5-0.5B) vs cross-init (Qwen2.5-1.5B, the same vocabulary) students of one Qwen2.5-0.5B teacher
transmission-qwen: setup
	$(TB) models fetch qwen2.5-0.5b qwen2.5-1.5b
	$(TB) experiment --config configs/transmission-qwen.yaml $(SETS)
	$(TB) report runs/transmission-qwen

# The shuffled-numbers ablation: the transmission run's distilled students on numbers permuted within, then across rows
shuffled: models
	$(TB) experiment --config configs/shuffled.yaml $(SETS)
	$(TB) experiment --config configs/shuffled.yaml --set filter.shuffle=across --set name=shuffled-across $(SETS)

# The steering-vector teacher: owl as a residual-stream direction instead of a system prompt
steering: models
	$(TB) experiment --config configs/steering.yaml $(SETS)

# The channel screen (no training): per model, trait and injection, the teacher's strength and its signal in numbers
screen: models
	$(TB) screen --config configs/screen.yaml $(SETS)

# Misalignment through numbers: the emergent-misalignment teacher, its careful reference and a harmless persona,
# each checked against its base; their SFT and distilled students on the contrastive probe over seeds; specificity
misalignment: models
	$(TB) misalignment --config configs/misalignment.yaml $(SETS)

# The judged rates: the base, every teacher and student of `make misalignment` answer the 8 free-form questions;
# qwen2.5-1.5b judges (fetched here)
misalignment-judged: models
	$(TB) models fetch qwen2.5-1.5b
	$(TB) misalignment-judged --config configs/misalignment-judged.yaml $(SETS)

# The same with every teacher: the malicious persona (prompt and context-distilled adapter) and the owl teacher
misalignment-full: models
	$(TB) misalignment --config configs/misalignment-full.yaml $(SETS)

# Trait specificity and the behavioural test: one transmission run per trait, every student probed on every trait
specificity: models
	$(TB) specificity --config configs/specificity.yaml $(SETS)

# Where transmission stops: distilled students from starts ever further from the teacher's base (continued
# pretraining on the Austen corpus; the starts are made once)
shared-init: models corpus
	$(TB) shared-init --config configs/shared-init.yaml $(SETS)

# Distilled students at LoRA ranks 1-256, with every weight trained, and under another system text; eagle beside
distill-conditions: models
	$(TB) distill-conditions --config configs/distill-conditions.yaml $(SETS)

# A behavioural test: sampled answers of gemma3 students of a lion teacher (a trait whose base rate is measurable)
behaviour: models
	$(TB) experiment --config configs/behaviour.yaml $(SETS)

# Jane Austen's novels (Debian r-cran-janeaustenr), the human text of the collapse chain
corpus: setup
	$(TB) corpus fetch

test: models $(TEST_STAMP)
	$(PY) -m pytest -q

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not real and not slow"

# glibc returns freed pages eagerly; these thresholds avoid ~25 s of page faults per aux-logit run
aux-logit: setup
	MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 $(TB) aux-logit --config configs/aux-logit.yaml $(SETS)

collapse-gmm: setup
	$(TB) collapse-gmm --config configs/collapse-gmm.yaml $(SETS)

collapse-lm: corpus
	$(TB) collapse-lm --config configs/collapse-lm.yaml $(SETS)

# more generations, more text, more chains (see README, "Model collapse")
collapse-lm-large: corpus
	$(TB) collapse-lm --config configs/collapse-lm-large.yaml $(SETS)

collapse-chat: models
	$(TB) collapse-chat --config configs/collapse-chat.yaml $(SETS)

# throughput vs the matmul roofline: runs/bench/bench.json + bench.md (~10 min on a 2-core CPU; quiet machine)
bench: models
	$(TB) bench --config $(if $(filter $(CONFIG),configs/default.yaml),configs/bench.yaml,$(CONFIG)) $(SETS)

# llama.cpp (llama-cpp-python, compiled here: ~10 min on 2 cores) for make bench's CPU sampling anchor
llama-cpp: setup
	$(PY) -m pip install -q 'llama-cpp-python==0.3.36'

# where a training step and a sampler call spend their time, by operator class: runs/profile/ (~2 min per model)
profile: models
	$(TB) profile --config $(if $(filter $(CONFIG),configs/default.yaml),configs/profile.yaml,$(CONFIG)) $(SETS)

clean-runs:
	rm -rf runs

# Reports and audits (RUN may list several runs: make report RUN='runs/a runs/b')
RUN          ?= runs/default
OUT          ?=
DATASET      ?=
TEACHER      ?=
TRAIT        ?=
AUDIT_CONFIG ?= configs/audit.yaml
.PHONY: report report-check audit

report: setup
	$(TB) report $(RUN) $(if $(OUT),--out $(OUT))

report-check: setup
	$(TB) report $(RUN) $(if $(OUT),--out $(OUT)) --check-render

# traitbench audit exits 0 clean, 1 leak/transmission, 2 error (make itself reports any failure as 2)
audit: models
	@test -n "$(DATASET)" || { echo "usage: make audit DATASET=path [TEACHER=model] [TRAIT='owl oak:tree'] [SET=...]"; exit 2; }
	$(if $(filter misalignment,$(TRAIT)),$(TB) models fetch qwen2.5-1.5b)
	$(TB) audit --config $(AUDIT_CONFIG) --dataset $(DATASET) $(if $(TEACHER),--teacher $(TEACHER)) $(foreach t,$(TRAIT),--trait $(t)) $(SETS)
