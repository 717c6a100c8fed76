/* general.size_label of `wgllm convert hf`: the labels gguf-py's
 * model_weight_count_rounded_notation gives for the same parameter counts (at least
 * two significant digits, Python's half-to-even round for the digit count). */
#include <stdint.h>

#include "check.h"
#include "convert/llama_gguf.h"

int main(void) {
    static const struct {
        uint64_t n;
        const char *label;
    } cases[] = {
        {0ull, "0.00K"},        {1ull, "0.00K"},        {999ull, "1.0K"},       {1000ull, "1.0K"},
        {1499ull, "1.5K"},      {1500ull, "1.5K"},      {2500ull, "2.5K"},      {9499ull, "9.5K"},
        {9500ull, "10K"},       {93504ull, "94K"},      {99500ull, "100K"},     {999999ull, "1000K"},
        {1000000ull, "1000K"},  {1000001ull, "1.0M"},   {4200000ull, "4.2M"},   {9950000ull, "10M"},
        {1100048384ull, "1.1B"}, {7241732096ull, "7.2B"}, {8030261248ull, "8.0B"}, {1000000000ull, "1000M"},
        {1000000001ull, "1.0B"}, {70553706496ull, "71B"}, {1500000000000ull, "1.5T"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        wg_llama_size_label(cases[i].n, buf, sizeof buf);
        CHECK_MSG(strcmp(buf, cases[i].label) == 0, "%llu: got %s, want %s\n", (unsigned long long)cases[i].n, buf,
                  cases[i].label);
    }
    CHECK_DONE();
}
