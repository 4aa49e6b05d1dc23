/* tests/test_main.c - the test runner; also the one translation unit of the suite that
   compiles the implementation (the others only include the declarations, so the suite
   itself links two kinds of translation unit together).

   usage: test_vppo [substring]   runs the tests whose name contains substring */
#define VPPO_IMPLEMENTATION
#include "test.h"
#include <stdarg.h>

#define T(name) void name(void);
#include "tests.def"
#undef T

typedef struct test_entry { const char *name; void (*fn)(void); } test_entry;
static const test_entry tests[] = {
#define T(name) { #name, name },
#include "tests.def"
#undef T
};

long test_checks = 0;
int test_failed_now = 0;
static const char *test_current = "";

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (test_failed_now < 10) {   /* the first few failures of a test are enough */
        fprintf(stderr, "FAIL %s (%s:%d): ", test_current, file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    ++test_failed_now;
}

int main(int argc, char **argv)
{
    size_t i, n_tests = sizeof tests / sizeof tests[0];
    int passed = 0, failed = 0;
    const char *filter = argc > 1 ? argv[1] : NULL;
    printf("vppo.h %d.%d.%d tests, isa %s\n", VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR,
           VPPO_VERSION_PATCH, vppo_isa_name(vppo_isa_active()));
    for (i = 0; i < n_tests; ++i) {
        long before = test_checks;
        if (filter && !strstr(tests[i].name, filter)) continue;
        test_current = tests[i].name;
        test_failed_now = 0;
        tests[i].fn();
        if (test_checks == before) {   /* a test that checks nothing cannot fail: a defect */
            fprintf(stderr, "FAIL %s: made no checks\n", tests[i].name);
            test_failed_now = 1;
        }
        if (test_failed_now) { ++failed; printf("  FAIL  %s (%d failed checks)\n", tests[i].name, test_failed_now); }
        else { ++passed; printf("  ok    %s (%ld checks)\n", tests[i].name, test_checks - before); }
    }
    printf("%ld checks\n", test_checks);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
