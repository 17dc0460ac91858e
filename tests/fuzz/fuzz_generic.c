/* fuzz_generic: libFuzzer target for the generic source (verify, doc_parse, identify, normalize,
 * replay) on arbitrary bytes; see fuzz_source.h. */
#define FUZZ_SOURCE "generic"
#include "fuzz_source.h"
