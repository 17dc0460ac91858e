/* fuzz_github: libFuzzer target for the github source (verify, doc_parse, identify, normalize,
 * replay) on arbitrary bytes; see fuzz_source.h. */
#define FUZZ_SOURCE "github"
#include "fuzz_source.h"
