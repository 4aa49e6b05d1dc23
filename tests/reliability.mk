# tests/reliability.mk - fuzzers, valgrind, 32-bit and large-index builds (included by the Makefile).
