/* The C tests' shared helper. Every recorder line carries its sequence
 * number right after the op word (`xskdbg:1 fill seq=4d950000000004 pool=1
 * ...`, docs/TRACE-FORMAT.md); it carries the pid, so the checks compare
 * the rest: strip_seq drops every " seq=<hex>" in place. */
#ifndef XSKDBG_TEST_SEQ_H
#define XSKDBG_TEST_SEQ_H

#include <string.h>

static void strip_seq(char *d)
{
	char *w = d;
	for (char *r = d; *r;) {
		if (strncmp(r, " seq=", 5) == 0) {
			r += 5;
			while ((*r >= '0' && *r <= '9') || (*r >= 'a' && *r <= 'f'))
				r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
}

#endif
