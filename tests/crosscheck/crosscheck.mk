# tests/crosscheck/crosscheck.mk - vppo.h against trusted implementations (included by the
# top-level Makefile). Optional; never part of make test.
#
#   make crosscheck   vppo.h through ctypes (build/xcheck/libvppo.so, examples/python/vppo.py)
#                     on random batches against (a) the installed verl package's
#                     verl.trainer.ppo.core_algos, (b) tests/crosscheck/vppo_release.py, a torch
#                     transcription of the VPPO release's update_policy, (c) torch.nn.functional;
#                     prints the largest difference seen per quantity. Each part that lacks
#                     what it needs (python3, numpy, torch, verl) prints "skipped: <why>" and the
#                     run exits 0; any real mismatch exits 1. Needs: pip install numpy torch, and
#                     pip install --no-deps verl + packaging ray tensordict omegaconf
#                     transformers codetiming (verl's own imports, without its heavy extras).
#                     XCHECK_FLAGS="--batches 20 --seed 7" for a longer or another run.
#   make golden       rewrites tests/data/golden_*.txt (the golden vectors that
#                     tests/test_golden.c checks in make test) from the same references; needs
#                     all of them and refuses (exit 2) otherwise. Format: tests/data/README.md.
#
# Uses BUILD, CC, CSTD, WARN, OPT and LDLIBS of the top-level Makefile.

XC_BUILD     := $(BUILD)/xcheck
XC_PYTHON    ?= python3
XCHECK_FLAGS ?=

.PHONY: crosscheck golden

$(XC_BUILD):
	@mkdir -p $@

$(XC_BUILD)/libvppo.so: examples/python/vppo_shared.c vppo.h | $(XC_BUILD)
	$(CC) $(CSTD) $(WARN) $(OPT) -fPIC -shared -I. -o $@ examples/python/vppo_shared.c $(LDLIBS)

crosscheck: $(XC_BUILD)/libvppo.so
	@if ! command -v $(XC_PYTHON) >/dev/null 2>&1; then \
	     echo "crosscheck: skipped: $(XC_PYTHON) not found"; \
	 else \
	     PYTHONDONTWRITEBYTECODE=1 VPPO_LIB=$(abspath $(XC_BUILD)/libvppo.so) \
	         $(XC_PYTHON) tests/crosscheck/crosscheck.py $(XCHECK_FLAGS); \
	 fi

golden:
	PYTHONDONTWRITEBYTECODE=1 $(XC_PYTHON) tests/crosscheck/crosscheck.py --write-golden tests/data
