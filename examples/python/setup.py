"""setup.py - builds the C library of the vppo package (pyproject.toml has the metadata).

The package is ctypes over a shared library: vppo_shared.c (vppo.h with
VPPO_IMPLEMENTATION) compiled by setuptools as a plain extension file named
vppo/_libvppo*.so (it has no Python entry point: ctypes loads it), and, when nvcc is
found, vppo_cuda.cu compiled by nvcc into vppo/_libvppo_cuda.so.

Where vppo.h is found: $VPPO_SOURCE_DIR, else the repository root two levels above this
file (pip builds ./examples/python in place). Environment:
    VPPO_NO_CUDA=1       do not build the CUDA library even if nvcc is there
    NVCC=/path/to/nvcc   the CUDA compiler (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc)
    VPPO_CUDA_ARCH="-gencode arch=compute_90,code=sm_90"   nvcc's target flags
                         (default: sm_80 and sm_90 code, compute_90 PTX for newer GPUs)
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("VPPO_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
if not os.path.exists(os.path.join(SRC, "vppo.h")):
    sys.exit("vppo setup.py: vppo.h not found in %s; build from a checkout (pip install ./examples/python) "
             "or set VPPO_SOURCE_DIR to the directory that holds vppo.h" % SRC)

UNIX = os.name == "posix"
CFLAGS = ["-std=c99", "-O2", "-ffp-contract=off"] if UNIX else ["/O2", "/fp:precise"]
DEFAULT_ARCH = ("-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 "
                "-gencode arch=compute_90,code=compute_90")


def find_nvcc():
    if os.environ.get("VPPO_NO_CUDA"):
        return None
    for cand in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and os.path.exists(cand):
            return cand
    return None


class BuildLibraries(build_ext):
    """build_ext, then the CUDA library with nvcc when there is one."""

    def get_export_symbols(self, ext):
        return []   # a ctypes library, not a Python module: no PyInit_ to export

    def run(self):
        super().run()
        nvcc = find_nvcc()
        out = os.path.join(self.build_lib, "vppo", "_libvppo_cuda.so")
        if nvcc is None:
            if os.path.exists(out):
                os.remove(out)   # from an earlier build in the same tree
            print("vppo setup.py: nvcc not found (or VPPO_NO_CUDA set): CPU-only build")
            return
        os.makedirs(os.path.dirname(out), exist_ok=True)
        arch = os.environ.get("VPPO_CUDA_ARCH", DEFAULT_ARCH).split()
        cmd = [nvcc, "-std=c++14", "-O3"] + arch + ["-Xcompiler", "-fPIC", "-shared", "-I" + SRC, "-o", out,
                                                   os.path.join(SRC, "vppo_cuda.cu"), "-lcudart"]
        print("vppo setup.py: " + " ".join(cmd))
        subprocess.check_call(cmd)
        if self.inplace:
            shutil.copy(out, os.path.join(HERE, "vppo", "_libvppo_cuda.so"))


setup(
    ext_modules=[Extension("vppo._libvppo", sources=["vppo_shared.c"], include_dirs=[SRC],
                           extra_compile_args=CFLAGS, libraries=["m"] if UNIX else [])],
    cmdclass={"build_ext": BuildLibraries},
)
