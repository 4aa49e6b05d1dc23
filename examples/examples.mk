# examples/examples.mk - the example programs (included by the top-level Makefile).
