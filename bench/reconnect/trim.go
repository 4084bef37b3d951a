package reconnectbench

/*
#include <malloc.h>
static int srd_trim(void) { return malloc_trim(0); }
*/
import "C"

// mallocTrim returns the free memory of every glibc arena to the system.
func mallocTrim() { C.srd_trim() }
