/* fuzz_jira: libFuzzer target for the jira source (verify, doc_parse, identify, normalize,
 * replay) on arbitrary bytes; see fuzz_source.h. */
#define FUZZ_SOURCE "jira"
#include "fuzz_source.h"
