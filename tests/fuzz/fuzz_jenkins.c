/* fuzz_jenkins: libFuzzer target for the jenkins source (verify, doc_parse, identify, normalize,
 * replay) on arbitrary bytes; see fuzz_source.h. */
#define FUZZ_SOURCE "jenkins"
#include "fuzz_source.h"
