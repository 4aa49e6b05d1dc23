# examples/examples.mk - the example programs (included by the top-level Makefile).
#
#   make examples          build every example this machine can build, into build/examples/
#   make examples-check    quick checks of the examples (tiny sizes, a few seconds; needs neither
#                          Python nor MPI): engine_step round trips, error reports and exit codes,
#                          perturb on a tiny synthetic image and its PPM/PNG readers, clang
#                          compiles (when clang exists), mpi_tas under mpirun (when mpicc exists)
#   make shared            build/libvppo.so, the shared library of the Python wrapper (examples/python)
#   make python-check      examples/python/check_step.py: the step against a numpy reference
#                          (skipped, exit 0, when python3 with numpy is missing)
#   make python-test       pip install ./examples/python into a fresh virtual environment
#                          (build/pyvenv, seeing the system's site-packages, so that an
#                          installed torch, verl or liger-kernel is used), then pytest over
#                          examples/python/tests with it; the torch, verl and Liger tests skip
#                          without those packages. Skipped (exit 0) without python3's venv
#                          module or pytest; PY_NO_CUDA=1 skips the nvcc build of the package.
#   make mpi-demo          examples/mpi_tas.c under mpirun -np 2 (skipped, exit 0, without mpicc)
#   make gallery-perturb   docs/img/perturb_strip.png from examples/perturb.c (needs libpng)
#
# Uses BUILD, CC, CSTD, WARN, OPT and LDLIBS of the top-level Makefile. EX_CC=clang builds the
# examples with another compiler; MPICC, MPIRUN and MPIRUN_FLAGS can be overridden.

EX_BUILD  := $(BUILD)/examples
EX_CC     ?= $(CC)
EX_CFLAGS  = $(CSTD) $(WARN) $(OPT)
EX_CHECK  := $(EX_BUILD)/check
MPICC     ?= mpicc
MPIRUN    ?= mpirun

# libpng (the simplified API of libpng 1.6), mpicc and Open MPI's mpirun: each tested on first
# use (a deferred variable that replaces itself with its value), so that other targets pay nothing.
EX_HAVE_PNG = $(eval EX_HAVE_PNG := $(shell printf '\043include <png.h>\nint main(void){png_image i; i.version = PNG_IMAGE_VERSION; return i.version == 0;}\n' | \
    $(EX_CC) -x c - -lpng -o /dev/null >/dev/null 2>&1 && echo yes))$(EX_HAVE_PNG)
EX_HAVE_MPI = $(eval EX_HAVE_MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && echo yes))$(EX_HAVE_MPI)
MPIRUN_FLAGS ?= $(if $(shell $(MPIRUN) --version 2>/dev/null | grep -i 'open mpi'),--allow-run-as-root --oversubscribe)
EX_PNG_FLAGS = $(if $(EX_HAVE_PNG),-DHAVE_PNG)
EX_PNG_LIBS  = $(if $(EX_HAVE_PNG),-lpng)
EX_TOY      := $(if $(wildcard examples/toy_vppo.c),$(EX_BUILD)/toy_vppo)

.PHONY: examples examples-check shared python-check python-test mpi-demo gallery-perturb

examples: $(EX_BUILD)/engine_step $(EX_BUILD)/perturb $(EX_TOY) $(BUILD)/libvppo.so
	@if [ -n "$(EX_HAVE_MPI)" ]; then $(MAKE) --no-print-directory $(EX_BUILD)/mpi_tas; \
	 else echo "examples: $(MPICC) not found: mpi_tas is not built"; fi
	@[ -n "$(EX_HAVE_PNG)" ] || echo "examples: libpng not found: perturb reads and writes PPM only"

$(EX_BUILD):
	@mkdir -p $@

$(EX_BUILD)/engine_step: examples/engine_step.c examples/npy.h vppo.h | $(EX_BUILD)
	$(EX_CC) $(EX_CFLAGS) -o $@ examples/engine_step.c $(LDLIBS)

$(EX_BUILD)/perturb: examples/perturb.c vppo.h | $(EX_BUILD)
	$(EX_CC) $(EX_CFLAGS) $(EX_PNG_FLAGS) -o $@ examples/perturb.c $(EX_PNG_LIBS) $(LDLIBS)

$(EX_BUILD)/mpi_tas: examples/mpi_tas.c vppo.h | $(EX_BUILD)
	$(MPICC) $(EX_CFLAGS) -o $@ examples/mpi_tas.c $(LDLIBS)

# The main demo (examples/toy_vppo.c, written separately): built whenever its source exists.
ifneq ($(wildcard examples/toy_vppo.c),)
$(EX_BUILD)/toy_vppo: examples/toy_vppo.c vppo.h | $(EX_BUILD)
	$(EX_CC) $(EX_CFLAGS) -o $@ examples/toy_vppo.c -lm
endif

# ------------------------------------------------------------------ Python (ctypes)

shared: $(BUILD)/libvppo.so

$(BUILD)/libvppo.so: examples/python/vppo_shared.c vppo.h | $(BUILD)
	$(EX_CC) $(EX_CFLAGS) -fPIC -shared -I. -o $@ examples/python/vppo_shared.c $(LDLIBS)

python-check: $(BUILD)/libvppo.so
	@if python3 -c 'import numpy' >/dev/null 2>&1; then \
	    PYTHONDONTWRITEBYTECODE=1 VPPO_LIB=$(abspath $(BUILD)/libvppo.so) python3 examples/python/check_step.py; \
	 else echo "python-check: skipped (python3 with numpy not found: pip install numpy)"; fi

PY_VENV := $(BUILD)/pyvenv
PY_NEEDS := import setuptools, venv, pytest, numpy, pip; from setuptools.command import bdist_wheel

# The venv has no pip of its own: the system's pip and setuptools build the package without
# build isolation and without fetching anything (numpy is the system's), so this runs offline.
# pytest's exit code 5 ("no tests collected") is a failure here: the numpy tests always run.
python-test:
	@if ! python3 -c '$(PY_NEEDS)' >/dev/null 2>&1; then \
	     echo "python-test: skipped (needs python3 with venv, pip, pytest, numpy and setuptools >= 70.1:"; \
	     echo "             pip install pytest numpy 'setuptools>=70.1')"; exit 0; fi; \
	 set -e; rm -rf $(PY_VENV); python3 -m venv --system-site-packages --without-pip $(PY_VENV); \
	 echo "python-test: pip install ./examples/python into $(PY_VENV)"; \
	 $(if $(PY_NO_CUDA),VPPO_NO_CUDA=1) $(PY_VENV)/bin/python -m pip install -q --disable-pip-version-check \
	     --no-build-isolation --no-deps ./examples/python > $(BUILD)/pyvenv-install.log 2>&1 || \
	     { cat $(BUILD)/pyvenv-install.log; exit 1; }; \
	 cd examples/python/tests && PYTHONDONTWRITEBYTECODE=1 ../../../$(PY_VENV)/bin/python -c \
	     'import vppo, os; print("python-test: vppo from", os.path.dirname(vppo.__file__), "| CUDA:", \
	      "built" if vppo.cuda_lib else vppo.cuda_error)'; \
	 rc=0; PYTHONDONTWRITEBYTECODE=1 ../../../$(PY_VENV)/bin/python -m pytest -q -rs -p no:cacheprovider . || rc=$$?; \
	 if [ $$rc -eq 5 ]; then echo "python-test: pytest collected no tests"; exit 1; fi; exit $$rc

# ------------------------------------------------------------------ MPI

mpi-demo:
	@if [ -n "$(EX_HAVE_MPI)" ]; then \
	    $(MAKE) --no-print-directory $(EX_BUILD)/mpi_tas && \
	    echo "$(MPIRUN) $(MPIRUN_FLAGS) -np 2 $(EX_BUILD)/mpi_tas" && \
	    $(MPIRUN) $(MPIRUN_FLAGS) -np 2 $(EX_BUILD)/mpi_tas; \
	 else echo "mpi-demo: skipped ($(MPICC) not found: apt-get install libopenmpi-dev openmpi-bin)"; fi

# ------------------------------------------------------------------ gallery

gallery-perturb: $(EX_BUILD)/perturb
	@[ -n "$(EX_HAVE_PNG)" ] || { echo "gallery-perturb: needs libpng (apt-get install libpng-dev)"; exit 1; }
	@mkdir -p docs/img
	$(EX_BUILD)/perturb --out $(EX_BUILD)/gallery --strip docs/img/perturb_strip.png
	@bytes=$$(wc -c < docs/img/perturb_strip.png); echo "docs/img/perturb_strip.png: $$bytes bytes"; \
	 [ $$bytes -lt 204800 ] || { echo "gallery-perturb: the strip is over 200 KB"; exit 1; }

# ------------------------------------------------------------------ examples-check

EX_COMMA := ,
# Runs a command that must fail with exit status $(1) and print $(2) on stderr.
EX_EXPECT_FAIL = rc=0; $(3) >$(EX_CHECK)/out.log 2>$(EX_CHECK)/err.log || rc=$$?; \
    if [ $$rc -ne $(1) ] || ! grep -qF -- "$(2)" $(EX_CHECK)/err.log; then \
        echo "examples-check: expected exit $(1) and \"$(2)\" from: $(3)"; echo "got exit $$rc:"; \
        cat $(EX_CHECK)/err.log; exit 1; fi

examples-check: $(EX_BUILD)/engine_step $(EX_BUILD)/perturb
	@echo "== examples-check"
	@rm -rf $(EX_CHECK) && mkdir -p $(EX_CHECK)
	@set -e; E=$(EX_BUILD)/engine_step; D=$(EX_CHECK); \
	 $$E make-inputs $$D/in --prompts 2 --rollouts 3 --len 16 --vocab 64 --seed 5 > $$D/make-inputs.log; \
	 $$E sampled $$D/in --check > $$D/sampled.log || { cat $$D/sampled.log; exit 1; }; \
	 $$E logits $$D/in --check > $$D/logits.log || { cat $$D/logits.log; exit 1; }; \
	 grep -q '6 files re-read: dtype, shape and every byte as written$$' $$D/sampled.log; \
	 grep -q '7 files re-read: dtype, shape and every byte as written$$' $$D/logits.log; \
	 grep -q 'max |log-prob from the logits - logp.npy| = 0$$' $$D/logits.log; \
	 ! grep -q FAILED $$D/sampled.log $$D/logits.log; \
	 echo "engine_step: make-inputs, sampled --check, logits --check (round trips and invariants): ok"
	@set -e; E=$(EX_BUILD)/engine_step; D=$(EX_CHECK); mkdir -p $$D/bad; cp $$D/in/*.npy $$D/bad/; \
	 $(call EX_EXPECT_FAIL,2,usage: ,$$E); \
	 $(call EX_EXPECT_FAIL,2,unknown mode 'bogus',$$E bogus $$D/in); \
	 $(call EX_EXPECT_FAIL,2,unknown option,$$E sampled $$D/in --bogus); \
	 $(call EX_EXPECT_FAIL,1,$$D/none/mask.npy: cannot open,$$E sampled $$D/none); \
	 LC_ALL=C sed '1s/<f4/<f8/' $$D/in/logp.npy > $$D/bad/logp.npy; \
	 $(call EX_EXPECT_FAIL,1,$$D/bad/logp.npy: dtype '<f8' is not supported,$$E sampled $$D/bad); \
	 head -c 200 $$D/in/logp.npy > $$D/bad/logp.npy; \
	 $(call EX_EXPECT_FAIL,1,$$D/bad/logp.npy: truncated,$$E sampled $$D/bad); \
	 echo 'not an array' > $$D/bad/logp.npy; \
	 $(call EX_EXPECT_FAIL,1,$$D/bad/logp.npy: not a .npy file,$$E sampled $$D/bad); \
	 cp $$D/in/logits.npy $$D/bad/ids.npy; \
	 $(call EX_EXPECT_FAIL,1,$$D/bad/ids.npy: dtype '<u2'$(EX_COMMA) expected '<i4',$$E logits $$D/bad); \
	 echo "engine_step: usage (exit 2), missing, float64, truncated, non-.npy and wrong-dtype files (exit 1, path and reason): ok"
	@set -e; P=$(EX_BUILD)/perturb; D=$(EX_CHECK); \
	 $$P --size 42 --seed 3 --out $$D/perturb > $$D/perturb.log || { cat $$D/perturb.log; exit 1; }; \
	 grep -q 'identical, byte for byte' $$D/perturb.log; \
	 grep -q 'nothing else$$' $$D/perturb.log; \
	 $$P --size 42 --seed 3 --ppm --out $$D/ppm > /dev/null; \
	 $$P $$D/ppm/original.ppm --seed 3 --ppm --out $$D/ppm2 > /dev/null; \
	 for f in original blackening noise fill blur patch_rows strip; do cmp -s $$D/ppm/$$f.ppm $$D/ppm2/$$f.ppm || \
	     { echo "examples-check: perturb from the PPM it wrote differs: $$f"; exit 1; }; done; \
	 if [ -n "$(EX_HAVE_PNG)" ]; then $$P $$D/perturb/original.png --seed 3 --ppm --out $$D/png2 > /dev/null; \
	     for f in original blackening noise fill blur patch_rows; do cmp -s $$D/ppm/$$f.ppm $$D/png2/$$f.ppm || \
	         { echo "examples-check: perturb from the PNG it wrote differs: $$f"; exit 1; }; done; fi; \
	 $(call EX_EXPECT_FAIL,1,$$D/none.ppm: cannot open,$$P $$D/none.ppm); \
	 echo "perturb: checks on a 42x42 image, PPM$(if $(EX_HAVE_PNG), and PNG) input round trips: ok"
ifneq ($(CLANG),)
	@for f in examples/engine_step.c examples/perturb.c examples/python/vppo_shared.c; do \
	     clang $(EX_CFLAGS) $(EX_PNG_FLAGS) -I. -fsyntax-only $$f || exit 1; done; \
	 echo "clang -std=c99 -Wall -Wextra -pedantic -Werror: the examples compile without a warning"
endif
	@if [ -n "$(EX_HAVE_MPI)" ]; then \
	     $(MAKE) --no-print-directory -s $(EX_BUILD)/mpi_tas && \
	     $(MPIRUN) $(MPIRUN_FLAGS) -np 2 $(EX_BUILD)/mpi_tas > $(EX_CHECK)/mpi.log 2>&1 || { cat $(EX_CHECK)/mpi.log; exit 1; }; \
	     grep -q 'every must-match holds' $(EX_CHECK)/mpi.log; \
	     echo "mpi_tas: 2 ranks, LINEAR scales and the step bit for bit, global-mu scales within 1 ulp: ok"; \
	 else echo "mpi_tas: $(MPICC) not found: not run"; fi
	@echo "examples-check: all passed"
