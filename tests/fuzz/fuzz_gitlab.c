/* fuzz_gitlab: libFuzzer target for the gitlab source (verify, doc_parse, identify, normalize,
 * replay) on arbitrary bytes; see fuzz_source.h. */
#define FUZZ_SOURCE "gitlab"
#include "fuzz_source.h"
