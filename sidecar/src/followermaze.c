/* followermaze.c — seed 004 sequencer. (Skeleton.) */
#include "modules.h"

int hs_followermaze_start(void) { return 0; }
void hs_followermaze_stop(void) {}
