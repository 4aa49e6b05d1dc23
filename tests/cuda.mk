# tests/cuda.mk - CUDA targets (included by the top-level Makefile).
