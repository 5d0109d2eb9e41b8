/* Minimal test harness shared by the C unit and BPF packet tests.
 * Prints one TAP-style line per check ("ok - name" / "not ok - name: why");
 * test/run.sh counts them. A test binary exits non-zero if any check failed. */
#ifndef PW_TEST_H
#define PW_TEST_H
#include <stdio.h>
#include <string.h>

extern int pwt_failed;
extern int pwt_passed;

#define PWT_CHECK(cond, name, ...) do {                                     \
	if (cond) { pwt_passed++; printf("ok - %s\n", name); }              \
	else { pwt_failed++; printf("not ok - %s: ", name);                 \
	       printf(__VA_ARGS__); printf(" (%s:%d)\n", __FILE__, __LINE__); } \
	fflush(stdout);                                                    \
} while (0)

#define PWT_EXPECT(cond, name) PWT_CHECK(cond, name, "expected %s", #cond)
#define PWT_EQ_INT(a, b, name) do { long long _a = (a), _b = (b);           \
	PWT_CHECK(_a == _b, name, "%s = %lld, expected %lld", #a, _a, _b); } while (0)
#define PWT_EQ_STR(a, b, name) do { const char *_a = (a), *_b = (b);        \
	PWT_CHECK(_a && _b && strcmp(_a, _b) == 0, name, "%s = \"%s\", expected \"%s\"", #a, _a ? _a : "(null)", _b); } while (0)

/* Returns the process exit status for main(). */
int pwt_done(void);
#endif
