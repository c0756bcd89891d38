// The subcommands of `pgolf` (SPEC §6); each registers its options and its callback.
#pragma once
#include <CLI/CLI.hpp>

namespace pgolf {

void add_init_command(CLI::App& app);   // cli/init_command.cpp
void add_score_commands(CLI::App& app);  // cli/score_commands.cpp: eval, grad

}  // namespace pgolf
