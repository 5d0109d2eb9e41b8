#include "pwtest.h"

int pwt_failed;
int pwt_passed;

int pwt_done(void)
{
	return pwt_failed ? 1 : 0;
}
