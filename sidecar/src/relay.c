/* relay.c — seed 003 relay. (Skeleton.) */
#include "modules.h"

int hs_relay_start(void) { return 0; }
void hs_relay_stop(void) {}
