// pgolf command line (SPEC §6). Placeholder until the eval/grad commands land this session.
#include <cstdio>
int main() { std::fprintf(stderr, "pgolf: no command yet\n"); return 1; }
